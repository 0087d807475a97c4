package api

import (
	"context"
	"net/http"
	"time"
)

// HealthResponse is the body of GET /health.
type HealthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// health reports liveness and whether the store answers.
func (d *Deps) health(ctx context.Context, _ *Request) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	store := "ok"
	status, code := "ok", http.StatusOK
	if err := d.Health.Ping(ctx); err != nil {
		store, status, code = "unavailable", "degraded", http.StatusServiceUnavailable
	}
	return JSON(code, HealthResponse{Status: status, Checks: map[string]string{"store": store}}), nil
}

// tenantHealth serves GET /admin/tenant-kms/health: the live BYOK probe
// of docs/contract.md §6, 200 whatever its verdict (the body says it).
func (d *Deps) tenantHealth(ctx context.Context, r *Request) (Response, error) {
	h, err := d.Tenants.Health(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, h), nil
}
