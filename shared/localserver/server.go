package localserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/internal/privatefile"
	"github.com/keyseal/keyseal/shared/keyevents"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/outbox"
	"github.com/keyseal/keyseal/shared/poller"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// DemoTenant is the tenant dev mode provisions.
const DemoTenant = "demo"

// Credentials is what <data dir>/dev-credentials.json holds.
type Credentials struct {
	APIURL     string `json:"api_url"`
	TenantID   string `json:"tenant_id"`
	AgentKey   string `json:"agent_key"`
	AgentID    string `json:"agent_id"`
	AdminToken string `json:"admin_token"`
	KMSKeyID   string `json:"kms_key_id"`
	// GCPKeyName and AzureKeyURL, with the cloud stand-ins, are a ready
	// key in each (DevGCPKeyName, DevAzureKeyURL) to register or migrate
	// the demo tenant to.
	GCPKeyName  string `json:"gcp_key_name,omitempty"`
	AzureKeyURL string `json:"azure_key_url,omitempty"`
}

// Server is a running local server.
type Server struct {
	App         *app.App
	Local       *Local
	Router      *api.Router
	Credentials Credentials
	URL         string
	// Drainer publishes the outbox in process.
	Drainer *outbox.Drainer
	srv     *http.Server
	done    chan struct{}
	// drainNow wakes the drain after a sweep, so a seal's event (and its
	// webhooks) goes out without waiting for the next OutboxInterval.
	drainNow chan struct{}
	// KeyEvents is the key-events Lambda's handler, in process (push.go);
	// pushes queues events for it (nil with KEYSEAL_DEV_PUSH=0).
	KeyEvents *keyevents.Handler
	pushes    chan []byte
	// devDoc is GET /dev/openapi.json: the dev document of this server's
	// /dev routes.
	devDoc json.RawMessage
}

// Options configure Start.
type Options struct {
	Addr    string
	DataDir string
	// DemoKeyID, in LocalStack mode, is the customer key the demo tenant
	// registers; "" creates one (alias/keyseal-demo).
	DemoKeyID string
	// AllowRemote lets Addr be a non-loopback address
	// (KEYSEAL_DEV_ALLOW_REMOTE=1; see checkListenAddr).
	AllowRemote bool
	// Timeouts of the HTTP server; zero takes the defaults of limits.go.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// Start provisions the demo tenant, writes dev-credentials.json, starts the
// poller every Config.PollInterval, the outbox drain every
// Config.OutboxInterval and, in dev mode, the webhook delivery worker
// (Local.Delivery), and serves HTTP on opt.Addr until ctx ends or
// Close.
func Start(ctx context.Context, a *app.App, l *Local, opt Options) (*Server, error) {
	if err := checkListenAddr(opt.Addr, opt.AllowRemote); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opt.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", opt.Addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !opt.AllowRemote && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, remoteRefused(ln.Addr().String())
	}
	ln = jsonErrorsListener{ln}
	s := &Server{App: a, Local: l, URL: "http://" + ln.Addr().String(), done: make(chan struct{}),
		drainNow: make(chan struct{}, 1)}
	dev := s.devRoutes()
	if s.devDoc, err = devOpenAPIFor(dev); err != nil {
		ln.Close()
		return nil, err
	}
	s.Router = api.NewRouter(a.Log, a.Deps.AllRoutes(), dev)
	if err := s.provisionDemo(ctx, opt); err != nil {
		ln.Close()
		return nil, fmt.Errorf("provision demo tenant: %w", err)
	}
	if err := writeJSON(filepath.Join(opt.DataDir, "dev-credentials.json"), s.Credentials); err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = httpServer(Handler(s.Router), opt)
	pollCtx, stopPoll := context.WithCancel(ctx)
	// The drain stands in for the table stream and the event-publisher
	// Lambda, publishing through the same Sink (see package outbox).
	s.Drainer = &outbox.Drainer{Store: a.Store, Sink: l.Events, Log: a.Log}
	var loops sync.WaitGroup
	if l.Delivery != nil {
		// Dev mode: each event's webhook jobs are enqueued before the
		// drain acks it, and the worker delivers them.
		s.Drainer.Sink = l.Delivery.Sink(l.Events)
		loops.Go(func() { l.Delivery.Run(pollCtx) })
	}
	s.KeyEvents = &keyevents.Handler{Index: a.Store, Tenants: a.Tenants, Resolve: resolveDevKey,
		CheckTimeout: 3 * a.Config.KMSTimeout, Log: a.Log}
	if l.Push {
		s.pushes = make(chan []byte, pushQueue)
		loops.Go(func() { s.pushLoop(pollCtx) })
	}
	loops.Go(func() { s.poll(pollCtx) })
	loops.Go(func() { s.drain(pollCtx, a.Config.OutboxInterval) })
	go func() {
		defer close(s.done)
		loops.Wait()
	}()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.Log.Error("serve", "err", err)
		}
		stopPoll()
	}()
	return s, nil
}

// Close stops the HTTP server and waits for the poller and the drain.
func (s *Server) Close() error {
	err := s.srv.Shutdown(context.Background())
	<-s.done
	return err
}

// poll runs a sweep every PollInterval, like the poller Lambda's 30 s
// cadence.
func (s *Server) poll(ctx context.Context) {
	// The verify-poller Lambda's own handler, one sweep per tick, so local
	// runs exercise the poller code that runs in AWS.
	h := &poller.Handler{Tenants: s.App.Tenants, Sweeps: 1, Log: s.App.Log}
	t := time.NewTicker(s.App.Config.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.Handle(ctx, nil) // never fails: it logs each sweep and its errors
			s.DrainNow()
		}
	}
}

// DrainNow has the drain run a round now rather than at the next
// OutboxInterval; the poller calls it after each sweep.
func (s *Server) DrainNow() {
	select {
	case s.drainNow <- struct{}{}:
	default:
	}
}

// drain publishes the outbox every interval and after each sweep, one
// round at a time, until ctx ends (outbox.Drainer.Run with a wake-up).
func (s *Server) drain(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Drainer.Drain(ctx); err != nil && ctx.Err() == nil {
			s.App.Log.Error("outbox: drain", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.drainNow:
		}
	}
}

// provisionDemo makes the demo tenant BYOK on a local (dev) or LocalStack
// key, and reuses the agent of an earlier run when it still works.
func (s *Server) provisionDemo(ctx context.Context, opt Options) error {
	path := filepath.Join(opt.DataDir, "dev-credentials.json")
	var prev Credentials
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &prev) // a broken file is replaced below
	}
	t, err := s.App.Tenants.Provision(ctx, DemoTenant, tenantkms.ActorSystem)
	if err != nil {
		return err
	}
	if !t.BYOK {
		// The demo tenant's admin acknowledges the waiver (audited as
		// keyseal's own act) so that registration passes its gate.
		if err := s.App.Deps.Waiver.Require(ctx, DemoTenant); err != nil {
			if _, err := s.App.Deps.Waiver.Acknowledge(ctx, DemoTenant, DemoWaiverEmail, tenantkms.ActorSystem); err != nil {
				return err
			}
		}
		key, err := s.demoKey(ctx, opt)
		if err != nil {
			return err
		}
		if t, err = s.App.Tenants.Register(ctx, DemoTenant, key, tenantkms.ActorSystem); err != nil {
			return err
		}
	}
	c := Credentials{APIURL: s.URL, TenantID: DemoTenant, KMSKeyID: t.Key.KeyID}
	if s.Local.Clouds != nil {
		c.GCPKeyName, c.AzureKeyURL = DevGCPKeyName, DevAzureKeyURL
	}
	if _, err := s.App.Deps.Agents.Authenticate(ctx, "Bearer "+prev.AgentKey); err == nil && prev.TenantID == DemoTenant {
		c.AgentKey, c.AgentID = prev.AgentKey, prev.AgentID
	} else {
		created, err := s.App.Deps.Agents.Create(ctx, DemoTenant, "demo-agent", tenantkms.ActorSystem)
		if err != nil {
			return err
		}
		c.AgentKey, c.AgentID = created.Key, created.ID
	}
	if c.AdminToken, err = s.adminToken(DemoTenant, "dev-admin", 12*time.Hour); err != nil {
		return err
	}
	s.Credentials = c
	return nil
}

func (s *Server) demoKey(ctx context.Context, opt Options) (keyseal.KeyRef, error) {
	if s.Local.LocalKMS != nil {
		id, err := s.Local.LocalKMS.CreateKey()
		return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}, err
	}
	id := opt.DemoKeyID
	if id == "" {
		var err error
		if id, err = EnsureKey(ctx, s.Local.AWS.KMS, "alias/keyseal-demo"); err != nil {
			return keyseal.KeyRef{}, err
		}
	}
	return keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: id}, nil
}

// adminToken mints an admin JWT fit for step-up (fresh auth_time, acr mfa).
func (s *Server) adminToken(tenantID, subject string, ttl time.Duration) (string, error) {
	return s.Local.Issuer.Mint(devissuer.Claims{Subject: subject, TenantID: tenantID, TTL: ttl, AuthTime: time.Now(),
		ACR: "mfa", AMR: []string{"pwd", "mfa"}, Roles: []string{"keyseal:admin"}})
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return privatefile.Write(path, append(b, '\n'))
}
