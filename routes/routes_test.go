package routes

import (
	"strings"
	"testing"
)

func TestRouteTemplate(t *testing.T) {
	r := New([]string{"/v1/jobs/{job}/logs", "v1/users/{name}", "/v1/files/{path}/{version}"})
	tests := []struct {
		name, path, want string
	}{
		{"root", "/", "/"},
		{"literal", "/v1/settings", "/v1/settings"},
		{"numeric", "/v1/jobs/123", "/v1/jobs/{id}"},
		{"another number, same route", "/v1/jobs/456", "/v1/jobs/{id}"},
		{"numeric in the middle", "/v1/jobs/123/cancel", "/v1/jobs/{id}/cancel"},
		{"UUID", "/v1/runs/123e4567-e89b-12d3-a456-426614174000", "/v1/runs/{id}"},
		{"UUID upper case", "/v1/runs/123E4567-E89B-12D3-A456-426614174000", "/v1/runs/{id}"},
		{"long hex", "/v1/objects/507f1f77bcf86cd799439011", "/v1/objects/{id}"},
		{"short hex is a word", "/v1/colors/beef", "/v1/colors/beef"},
		{"base62", "/v1/tokens/AbC123xyz789QwE456rtY0", "/v1/tokens/{id}"},
		{"prefixed base62", "/v1/customers/cus_9s6XKzkNRiz8i3", "/v1/customers/cus_9s6XKzkNRiz8i3"},
		{"long prefixed base62", "/v1/customers/cus_9s6XKzkNRiz8i3abcdef", "/v1/customers/{id}"},
		{"long word without digits", "/v1/reports/monthly-revenue-by-region", "/v1/reports/monthly-revenue-by-region"},
		{"overlong segment", "/v1/x/" + strings.Repeat("a", 100), "/v1/x/{id}"},
		{"trailing slash", "/v1/jobs/", "/v1/jobs/"},
		{"explicit template", "/v1/jobs/abc/logs", "/v1/jobs/{job}/logs"},
		{"explicit template over the heuristic", "/v1/users/123", "/v1/users/{name}"},
		{"explicit template, two wildcards", "/v1/files/report.pdf/3", "/v1/files/{path}/{version}"},
		{"template needs the same segment count", "/v1/jobs/abc/logs/2", "/v1/jobs/abc/logs/{id}"},
		{"template needs equal literals", "/v1/jobs/abc/output", "/v1/jobs/abc/output"},
		{"deep path is cut", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/{more}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Name(tt.path); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestTemplateMatches(t *testing.T) {
	tests := []struct {
		template, path string
		want           bool
	}{
		{"/v1/detect", "/v1/detect", true},
		{"/v1/detect", "/v1/detect/", false},
		{"/v1/detect", "/v1/detects", false},
		{"/v1/jobs/{id}", "/v1/jobs/42", true},
		{"/v1/jobs/{id}", "/v1/jobs/42/logs", false},
		{"v1/jobs/{id}/cancel", "/v1/jobs/42/cancel", true},
		{"/v1/jobs/{id}/cancel", "/v1/jobs/42/pause", false},
	}
	for _, tt := range tests {
		t.Run(tt.template+" "+tt.path, func(t *testing.T) {
			tpl := Compile(tt.template)
			if got := tpl.Matches(tt.path); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}
