package integration

import (
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// There is no Docker engine on the machines this suite runs on, so the
// compose file and Dockerfile are checked as far as that allows: compose's
// own validator when docker-compose is installed, their structure, and the
// serve health check run against a real `jobctl serve`.

func TestComposeFileValidates(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-compose is not installed (scripts/test.sh installs it in CI)")
		}
		t.Skip("docker-compose not installed: structure checked by TestComposeFileStructure only")
	}
	out, err := exec.Command("docker-compose", "-f", "../../docker-compose.yml", "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	// What compose v1 itself would start: both workers, by name.
	out, err = exec.Command("docker-compose", "-f", "../../docker-compose.yml", "config", "--services").Output()
	if err != nil {
		t.Fatalf("docker-compose config --services: %v", err)
	}
	services := strings.Fields(string(out))
	for _, want := range []string{"kafka", "topic-init", "producer", "worker-1", "worker-2", "serve"} {
		if !slices.Contains(services, want) {
			t.Errorf("docker-compose would not start %s; its services: %v", want, services)
		}
	}
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	User        string            `yaml:"user"`
	Command     []string          `yaml:"command"`
	Environment map[string]any    `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	DependsOn   map[string]any    `yaml:"depends_on"`
	Healthcheck map[string]any    `yaml:"healthcheck"`
	Deploy      map[string]any    `yaml:"deploy"`
	Labels      map[string]string `yaml:"labels"`
}

func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml is not YAML: %v", err)
	}
	return doc.Services
}

// flagValue is the value after flag in a command line, or "".
func flagValue(cmd []string, flag string) string {
	if i := slices.Index(cmd, flag); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

func TestComposeFileStructure(t *testing.T) {
	services := readCompose(t)
	kafka, ok := services["kafka"]
	if !ok || !strings.HasPrefix(kafka.Image, "apache/kafka:4.") {
		t.Fatalf("want an apache/kafka:4.x service, got %+v", kafka)
	}
	// Compose runs the Kafka version the integration tests run.
	script, err := os.ReadFile("../../scripts/kafka.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`KAFKA_VERSION="\$\{KAFKA_VERSION:-([0-9.]+)\}"`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/kafka.sh has no KAFKA_VERSION default")
	}
	if want := "apache/kafka:" + string(m[1]); kafka.Image != want {
		t.Errorf("kafka image is %s; the tests run Kafka %s (scripts/kafka.sh): want %s", kafka.Image, m[1], want)
	}
	if kafka.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" || kafka.Healthcheck == nil {
		t.Errorf("kafka must run KRaft (broker,controller) with a health check")
	}
	if !strings.Contains(kafka.Environment["KAFKA_ADVERTISED_LISTENERS"].(string), "localhost:9092") {
		t.Errorf("kafka must advertise localhost:9092 to the host")
	}
	for name, s := range services {
		if strings.Contains(name, "zookeeper") {
			t.Errorf("Kafka 4 has no ZooKeeper; remove service %s", name)
		}
		// docker-compose v1 ignores deploy: replicas there would start one.
		if _, ok := s.Deploy["replicas"]; ok {
			t.Errorf("service %s uses deploy.replicas, which docker-compose v1 ignores: use named services", name)
		}
	}
	want := map[string]string{"topic-init": "topic", "producer": "produce", "worker-1": "consume", "worker-2": "consume", "serve": "serve"}
	for svc, verb := range want {
		s, ok := services[svc]
		if !ok {
			t.Errorf("missing service %s", svc)
			continue
		}
		if len(s.Command) == 0 || s.Command[0] != verb {
			t.Errorf("service %s should run jobctl %s, runs %v", svc, verb, s.Command)
		}
		if s.User == "" || strings.HasPrefix(s.User, "0") || s.User == "root" {
			t.Errorf("service %s must run as a non-root user, has %q", svc, s.User)
		}
		if s.Environment["JOBCTL_BROKERS"] != "kafka:19092" {
			t.Errorf("service %s must use the internal listener", svc)
		}
		// Every flag the service passes must exist: cobra parses flags
		// before --help, so an unknown one fails here.
		if r := runBinary(t, t.TempDir(), nil, append(append([]string{}, s.Command...), "--help")...); r.Code != 0 {
			t.Errorf("service %s: jobctl %v is not a valid command line: %s", svc, s.Command, r)
		}
	}
	w1, w2 := services["worker-1"].Command, services["worker-2"].Command
	if g := flagValue(w1, "--group"); g == "" || g != flagValue(w2, "--group") {
		t.Errorf("want two workers in one group, worker-1 runs %v and worker-2 %v", w1, w2)
	}
	if id := flagValue(w1, "--instance-id"); id != "" && id == flagValue(w2, "--instance-id") {
		t.Errorf("the two workers share --instance-id %q: static members must differ", id)
	}

	serve := services["serve"]
	if c, _ := serve.DependsOn["kafka"].(map[string]any); c == nil || c["condition"] != "service_healthy" {
		t.Errorf("serve must wait for a healthy kafka, depends_on = %v", serve.DependsOn)
	}
	if c, _ := serve.DependsOn["topic-init"].(map[string]any); c == nil || c["condition"] != "service_completed_successfully" {
		t.Errorf("serve must wait for topic-init, depends_on = %v", serve.DependsOn)
	}
	test := healthcheckCommand(t, serve)
	if len(test) < 2 || test[0] != "jobctl" || test[1] != "probe" {
		t.Errorf("serve's health check must use the jobctl binary (the image has no curl), is %v", test)
	}

	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), "\nUSER ") || strings.Contains(string(dockerfile), "USER root") {
		t.Error("the Dockerfile must switch to a non-root USER")
	}
	if !strings.Contains(string(dockerfile), "FROM debian:bookworm-slim") {
		t.Error("the Dockerfile's runtime image changed: check that the health check still needs nothing but jobctl")
	}

	// The build context leaves out what is not source: the git history,
	// a local `jobctl dev` or broker data dir, the built binary, logs.
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatalf("no .dockerignore: the build context would hold .git, data and binaries: %v", err)
	}
	lines := strings.Split(string(ignore), "\n")
	for _, p := range []string{".git", "data", "jobctl", "*.log"} {
		if !slices.Contains(lines, p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
	for _, l := range lines {
		if l = strings.TrimSpace(l); l == "cmd" || l == "pkg" || l == "main.go" || l == "go.mod" || l == "go.sum" || l == "*" || l == "*.go" {
			t.Errorf(".dockerignore excludes %s, which the build needs", l)
		}
	}
}

// healthcheckCommand is a service's healthcheck test as an argv.
func healthcheckCommand(t *testing.T, s composeService) []string {
	t.Helper()
	raw, _ := s.Healthcheck["test"].([]any)
	if len(raw) < 2 || raw[0] != "CMD" {
		t.Fatalf("want a healthcheck test [\"CMD\", ...] (an exec form: no shell needed), got %v", s.Healthcheck["test"])
	}
	var argv []string
	for _, a := range raw[1:] {
		argv = append(argv, a.(string))
	}
	return argv
}

// TestComposeServeHealthcheck runs serve's compose health check, as
// written, against a running `jobctl serve` (healthy: exit 0) and against
// a port nothing listens on (exit 1 naming the URL).
func TestComposeServeHealthcheck(t *testing.T) {
	argv := healthcheckCommand(t, readCompose(t)["serve"])
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 1)
		srv := startServe(t, tgt, topic)
		// The compose check probes port 8080 in serve's container; here
		// serve listens on a free port, so only the port is swapped.
		served, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{}, argv[1:]...)
		for i, a := range args {
			if u, err := url.Parse(a); err == nil && u.Host != "" {
				u.Host = "127.0.0.1:" + served.Port()
				args[i] = u.String()
			}
		}
		if r := runBinary(t, t.TempDir(), nil, args...); r.Code != 0 || !strings.Contains(r.Stdout, "200") {
			t.Fatalf("health check %v against a running serve: %s", args, r)
		}
		srv.stop(t)
		r := runBinary(t, t.TempDir(), nil, args...)
		if r.Code != 1 || !strings.Contains(r.Stderr, "127.0.0.1:"+served.Port()+"/healthz") {
			t.Fatalf("health check %v against a stopped serve: want exit 1 naming the URL, got %s", args, r)
		}
	})
}
