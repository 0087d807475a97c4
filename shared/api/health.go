package api

import (
	"context"
	"net/http"
	"time"
)

// HealthRoutes are the routes of the health Lambda.
func HealthRoutes(d *Deps) []Route {
	return []Route{{Method: http.MethodGet, Path: "/health", Handler: d.health}}
}

// health reports liveness and whether the store answers.
func (d *Deps) health(ctx context.Context, _ *Request) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	store := "ok"
	status, code := "ok", http.StatusOK
	if err := d.Store.Ping(ctx); err != nil {
		store, status, code = "unavailable", "degraded", http.StatusServiceUnavailable
	}
	return JSON(code, map[string]any{"status": status, "checks": map[string]string{"store": store}}), nil
}
