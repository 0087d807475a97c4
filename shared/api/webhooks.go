package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/subscription"
)

// WebhookList is the body of GET /admin/webhooks (secrets are never in
// it).
type WebhookList struct {
	Webhooks []keyseal.Webhook `json:"webhooks"`
}

// CreateWebhookRequest is the body of POST /admin/webhooks: the https
// endpoint, the event types (at least one) and a description.
type CreateWebhookRequest struct {
	URL         string   `json:"url" jsonschema:"format=uri"`
	Events      []string `json:"events" jsonschema:"minItems=1"`
	Description string   `json:"description,omitempty"`
}

// WebhookTestQueued is the body of POST /admin/webhooks/{id}/test.
type WebhookTestQueued struct {
	WebhookID string `json:"webhook_id"`
	EventID   string `json:"event_id"`
}

// DeliveryList is the body of GET /admin/webhooks/{id}/deliveries.
type DeliveryList struct {
	Deliveries []keyseal.DeliveryAttempt `json:"deliveries"`
}

// webhooks is the subscription service, or a clear refusal where this
// process was built without one.
func (d *Deps) webhooks() (*subscription.Service, error) {
	if d.Webhooks == nil {
		return nil, keyseal.Errorf(keyseal.EINTERNAL, "webhooks are not configured in this process")
	}
	return d.Webhooks, nil
}

// createWebhook serves POST /admin/webhooks {url, events, description}:
// 201 with the subscription and its secret, shown this once.
func (d *Deps) createWebhook(ctx context.Context, r *Request) (Response, error) {
	svc, err := d.webhooks()
	if err != nil {
		return Response{}, err
	}
	var in CreateWebhookRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if in.URL == "" {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "url is required: the https endpoint that receives the events")
	}
	created, err := svc.Create(ctx, r.Admin.TenantID, in.URL, in.Events, in.Description, r.Admin.Actor())
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusCreated, created), nil
}

func (d *Deps) listWebhooks(ctx context.Context, r *Request) (Response, error) {
	svc, err := d.webhooks()
	if err != nil {
		return Response{}, err
	}
	ws, err := svc.List(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	if ws == nil {
		ws = []keyseal.Webhook{}
	}
	return JSON(http.StatusOK, WebhookList{Webhooks: ws}), nil
}

func (d *Deps) deleteWebhook(ctx context.Context, r *Request) (Response, error) {
	svc, err := d.webhooks()
	if err != nil {
		return Response{}, err
	}
	if err := svc.Delete(ctx, r.Admin.TenantID, r.Params["id"], r.Admin.Actor()); err != nil {
		return Response{}, err
	}
	return Response{Status: http.StatusNoContent}, nil
}

// rotateWebhookSecret serves POST /admin/webhooks/{id}/rotate-secret: the
// new secret (shown once) and when the previous one stops signing.
func (d *Deps) rotateWebhookSecret(ctx context.Context, r *Request) (Response, error) {
	svc, err := d.webhooks()
	if err != nil {
		return Response{}, err
	}
	if err := Decode(r, &struct{}{}, true); err != nil {
		return Response{}, err
	}
	rot, err := svc.RotateSecret(ctx, r.Admin.TenantID, r.Params["id"], r.Admin.Actor())
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, rot), nil
}

// testWebhook serves POST /admin/webhooks/{id}/test: 202, a webhook.test
// event queued for that subscription only.
func (d *Deps) testWebhook(ctx context.Context, r *Request) (Response, error) {
	svc, err := d.webhooks()
	if err != nil {
		return Response{}, err
	}
	if err := Decode(r, &struct{}{}, true); err != nil {
		return Response{}, err
	}
	id, err := svc.Test(ctx, r.Admin.TenantID, r.Params["id"])
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusAccepted, WebhookTestQueued{WebhookID: r.Params["id"], EventID: id}), nil
}

// listDeliveries serves GET /admin/webhooks/{id}/deliveries?limit= (1-100,
// default 20), newest first.
func (d *Deps) listDeliveries(ctx context.Context, r *Request) (Response, error) {
	svc, err := d.webhooks()
	if err != nil {
		return Response{}, err
	}
	limit := 0
	if s := r.QueryStringParameters["limit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > subscription.MaxDeliveries {
			return Response{}, keyseal.Errorf(keyseal.EINVALID, "limit must be an integer between 1 and %d", subscription.MaxDeliveries)
		}
		limit = n
	}
	ds, err := svc.Deliveries(ctx, r.Admin.TenantID, r.Params["id"], limit)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, DeliveryList{Deliveries: ds}), nil
}
