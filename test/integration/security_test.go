package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// selfSignedTLS returns a server TLS config for 127.0.0.1 and the path of
// a PEM file with its certificate, for clients to trust.
func selfSignedTLS(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "jobctl-test-broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, caFile
}

// TestTLSAndSASL runs jobctl against a broker that requires TLS and SASL
// (the embedded kfake, configured for both): the tls.* and sasl.* keys
// work end to end, and a wrong password or an untrusted certificate is a
// clear failure.
func TestTLSAndSASL(t *testing.T) {
	serverTLS, caFile := selfSignedTLS(t)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.EnableSASL(),
				kfake.Superuser(mech, "jobs", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tgt := Target{Name: "tls-sasl", Brokers: c.ListenAddrs()}
			secure := []string{"JOBCTL_TLS_ENABLED=true", "JOBCTL_TLS_CA_FILE=" + caFile,
				"JOBCTL_SASL_MECHANISM=" + mech, "JOBCTL_SASL_USERNAME=jobs", "JOBCTL_SASL_PASSWORD=s3cret"}
			topic := uniqueName(t, "secure")
			run := func(env []string, args ...string) result {
				t.Helper()
				c := jobctlProcess(t, tgt, append(env, "JOBCTL_TOPIC="+topic), args...)
				var out, errOut strings.Builder
				c.Stdout, c.Stderr = &out, &errOut
				err := c.Run()
				code := 0
				if err != nil {
					code = c.ProcessState.ExitCode()
				}
				return result{Stdout: out.String(), Stderr: errOut.String(), Code: code}
			}
			for _, args := range [][]string{
				{"topic", "create", "--partitions", "2"},
				{"produce", "--count", "20"},
				{"consume", "--timeout", "2s", "--sleep", "0s", "--processed-log", ""},
			} {
				if r := run(secure, args...); r.Code != 0 {
					t.Fatalf("jobctl %v over TLS+%s: %s", args, mech, r)
				}
			}
			r := run(secure, "jobs", "list", "--status", "DONE", "-o", "json")
			if r.Code != 0 || strings.Count(r.Stdout, `"status": "DONE"`) != 20 {
				t.Fatalf("want 20 DONE jobs over TLS+%s: %s", mech, r)
			}

			wrongPassword := append(append([]string{}, secure[:4]...), "JOBCTL_SASL_PASSWORD=nope")
			if r := run(wrongPassword, "topic", "list"); r.Code != 1 || !strings.Contains(r.Stderr, "rejected the credentials") {
				t.Errorf("wrong password: want exit 1 with a SASL error, got %s", r)
			}
			untrusted := append([]string{"JOBCTL_TLS_ENABLED=true"}, secure[2:]...)
			if r := run(untrusted, "topic", "list"); r.Code != 1 || !strings.Contains(r.Stderr, "certificate") {
				t.Errorf("untrusted broker certificate: want exit 1 naming the certificate, got %s", r)
			}
		})
	}
}
