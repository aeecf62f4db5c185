package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// There is no Docker engine on the machines this suite runs on, so the
// compose file and Dockerfile are checked as far as that allows: compose's
// own validator when docker-compose is installed, and their structure.

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
}

func TestComposeFileStructure(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
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
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml is not YAML: %v", err)
	}
	kafka, ok := doc.Services["kafka"]
	if !ok || !strings.HasPrefix(kafka.Image, "apache/kafka:4.") {
		t.Fatalf("want an apache/kafka:4.x service, got %+v", kafka)
	}
	if kafka.Environment["KAFKA_PROCESS_ROLES"] != "broker,controller" || kafka.Healthcheck == nil {
		t.Errorf("kafka must run KRaft (broker,controller) with a health check")
	}
	if !strings.Contains(kafka.Environment["KAFKA_ADVERTISED_LISTENERS"].(string), "localhost:9092") {
		t.Errorf("kafka must advertise localhost:9092 to the host")
	}
	for name := range doc.Services {
		if strings.Contains(name, "zookeeper") {
			t.Errorf("Kafka 4 has no ZooKeeper; remove service %s", name)
		}
	}
	want := map[string]string{"topic-init": "topic", "producer": "produce", "worker": "consume", "serve": "serve"}
	for svc, verb := range want {
		s, ok := doc.Services[svc]
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
	if r := doc.Services["worker"].Deploy["replicas"]; r != 2 {
		t.Errorf("want two workers in one group, replicas = %v", r)
	}

	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dockerfile), "\nUSER ") || strings.Contains(string(dockerfile), "USER root") {
		t.Error("the Dockerfile must switch to a non-root USER")
	}
}
