package gcpkms

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// CloudPlatform is the OAuth scope Cloud KMS calls need.
const CloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

// DefaultIAMCredentialsEndpoint is the IAM Service Account Credentials
// API, which mints the tokens of an impersonated service account.
const DefaultIAMCredentialsEndpoint = "https://iamcredentials.googleapis.com/"

// Endpoints are where the provider reaches Google, and the transport under
// its credentials. The zero value is Google's public endpoints over
// http.DefaultTransport; a stand-in sets its own URLs.
type Endpoints struct {
	KMS            string
	IAMCredentials string
	Transport      http.RoundTripper
}

func (e Endpoints) kms() string { return cmp.Or(e.KMS, DefaultEndpoint) }

func (e Endpoints) iam() string { return cmp.Or(e.IAMCredentials, DefaultIAMCredentialsEndpoint) }

func (e Endpoints) transport() http.RoundTripper {
	if e.Transport == nil {
		return http.DefaultTransport
	}
	return e.Transport
}

// Client returns a Cloud KMS client that authenticates with keyseal's own
// credentials, ts (a failure to get a token is a *TokenError with Own
// set).
func (e Endpoints) Client(ts oauth2.TokenSource) *Client {
	return NewClient(e.kms(), &http.Client{Transport: &oauth2.Transport{Source: ownTokens{ts}, Base: e.transport()}})
}

// TokenContext is ctx carrying the HTTP client golang.org/x/oauth2
// fetches keyseal's own tokens with (e's transport, each fetch bounded by
// tokenTimeout): pass it to google.CredentialsFromJSONWithType.
func (e Endpoints) TokenContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, &http.Client{Transport: e.transport(), Timeout: tokenTimeout})
}

// TokenError is a call that never reached Cloud KMS because no access
// token could be had: keyseal's own credentials failed (Own), or the IAM
// Credentials API would not mint the key's service account's token
// (HTTPStatus is its answer, 0 when there was none).
type TokenError struct {
	Own        bool
	HTTPStatus int
	Err        error
}

func (e *TokenError) Error() string {
	if e.Own {
		return "gcp-kms: keyseal's own Google credentials: " + e.Err.Error()
	}
	return "gcp-kms: impersonating the key's service account: " + e.Err.Error()
}

func (e *TokenError) Unwrap() error { return e.Err }

// refused reports whether Google refused keyseal's own credentials (an
// OAuth or STS 4xx), as opposed to not answering.
func (e *TokenError) refused() bool {
	var re *oauth2.RetrieveError
	if errors.As(e.Err, &re) && re.Response != nil && re.Response.StatusCode/100 == 4 {
		return true
	}
	return OwnCredentialsRefused(e.Err.Error())
}

// ownTokens marks keyseal's own credentials' failures as such.
type ownTokens struct{ ts oauth2.TokenSource }

func (o ownTokens) Token() (*oauth2.Token, error) {
	tok, err := o.ts.Token()
	if err != nil {
		var te *TokenError
		if errors.As(err, &te) {
			return nil, err
		}
		return nil, &TokenError{Own: true, Err: err}
	}
	return tok, nil
}

// ServiceAccountClients returns a clientFor (see WithServiceAccounts) that
// builds one Cloud KMS client per service account, authenticated with
// tokens from the IAM Credentials API (generateAccessToken, called with
// keyseal's own token from own; cached and refreshed five minutes before
// they expire). Clients are kept: there is one small entry per registered
// service account, and each impersonates once per token lifetime, not
// once per call.
//
// The customer's side is roles/iam.serviceAccountTokenCreator for
// keyseal's identity on the service account: once revoked,
// generateAccessToken answers 403 and every call through it is
// access_denied, as a revoked KMS grant is. keyseal's own token refused
// (401) is its own credentials' fault and never seals.
func ServiceAccountClients(own oauth2.TokenSource, e Endpoints) func(serviceAccount string) (API, error) {
	var mu sync.Mutex
	clients := map[string]API{}
	return func(sa string) (API, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := clients[sa]; ok {
			return c, nil
		}
		src := &impersonated{base: ownTokens{own}, http: &http.Client{Transport: e.transport(), Timeout: tokenTimeout},
			url: e.iam() + "v1/projects/-/serviceAccounts/" + url.PathEscape(sa) + ":generateAccessToken"}
		c := NewClient(e.kms(), &http.Client{Transport: &oauth2.Transport{
			Source: oauth2.ReuseTokenSourceWithExpiry(nil, src, 5*time.Minute), Base: e.transport()}})
		clients[sa] = c
		return c, nil
	}
}

// tokenTimeout bounds one generateAccessToken call: oauth2.Transport gets
// a token outside the KMS call's context.
const tokenTimeout = 10 * time.Second

// impersonated is the token source of one service account.
type impersonated struct {
	base oauth2.TokenSource
	http *http.Client
	url  string
}

func (s *impersonated) Token() (*oauth2.Token, error) {
	base, err := s.base.Token()
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]any{"scope": []string{CloudPlatform}, "lifetime": "3600s"})
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	base.SetAuthHeader(req)
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &TokenError{Err: err}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		// The IAM API refused keyseal's own token.
		return nil, &TokenError{Own: true, HTTPStatus: resp.StatusCode, Err: parseAPIError(resp.StatusCode, b)}
	case resp.StatusCode != http.StatusOK:
		return nil, &TokenError{HTTPStatus: resp.StatusCode, Err: parseAPIError(resp.StatusCode, b)}
	}
	var out struct {
		AccessToken string    `json:"accessToken"`
		ExpireTime  time.Time `json:"expireTime"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" {
		return nil, &TokenError{HTTPStatus: resp.StatusCode, Err: fmt.Errorf("generateAccessToken answered no token")}
	}
	return &oauth2.Token{AccessToken: out.AccessToken, TokenType: "Bearer", Expiry: out.ExpireTime}, nil
}
