package cmd

import "testing"

func TestProbeURL(t *testing.T) {
	cases := []struct{ target, addr, want string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080/healthz"},
		{"", "0.0.0.0:9000", "http://127.0.0.1:9000/healthz"},
		{"", ":8080", "http://127.0.0.1:8080/healthz"},
		{"", "[::]:8080", "http://127.0.0.1:8080/healthz"},
		{"localhost:8080", "", "http://localhost:8080/healthz"},
		{"http://10.0.0.1:8080/", "", "http://10.0.0.1:8080/healthz"},
		{"http://127.0.0.1:8080/readyz", "", "http://127.0.0.1:8080/readyz"},
		{"https://jobs.example.com", "", "https://jobs.example.com/healthz"},
	}
	for _, c := range cases {
		got, err := probeURL(c.target, c.addr)
		if err != nil || got != c.want {
			t.Errorf("probeURL(%q, %q) = %q, %v; want %q", c.target, c.addr, got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://x/healthz", "http://", "http://[::1"} {
		if got, err := probeURL(bad, ""); err == nil {
			t.Errorf("probeURL(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := probeURL("", "no-port"); err == nil {
		t.Error("probeURL with api.addr without a port: want an error")
	}
}
