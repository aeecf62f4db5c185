package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/segmentio/kafka-go"
)

// topicDescribeJSON runs `topic describe -o json` and decodes it.
func topicDescribeJSON(t *testing.T, tgt Target, topic string) admin.TopicDescription {
	t.Helper()
	r := mustJobctl(t, tgt, "topic", "describe", topic, "-o", "json")
	var d admin.TopicDescription
	if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil {
		t.Fatalf("describe -o json is not a topic description: %v\n%s", err, r)
	}
	return d
}

// topicPartitionCount reads topic's partition count straight from the broker.
func topicPartitionCount(t *testing.T, tgt Target, topic string) int {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("reading metadata of %s: %v %+v", topic, err, md)
	}
	return len(md.Topics[0].Partitions)
}

// wantExit fails t unless r ended with code and its stderr says each of substrings.
func wantExit(t *testing.T, r result, code int, substrings ...string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Stderr, s) {
			t.Fatalf("stderr does not say %q: %s", s, r)
		}
	}
}

func TestTopicCreate(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "create")
		r := mustJobctl(t, tgt, "topic", "create", topic, "--partitions", "3")
		if !strings.Contains(r.Stdout, fmt.Sprintf("Created topic %q with 3 partition(s), replication factor 1", topic)) {
			t.Fatalf("unexpected output: %s", r)
		}
		// The command returns once the partitions are usable everywhere.
		if n := topicPartitionCount(t, tgt, topic); n != 3 {
			t.Fatalf("topic has %d partitions, want 3", n)
		}

		again := jobctl(t, tgt, "topic", "create", topic, "--partitions", "3")
		wantExit(t, again, 1, "already exists", topic)

		for range 2 { // idempotent: any number of times
			r = mustJobctl(t, tgt, "topic", "create", topic, "--partitions", "5", "--if-not-exists", "-o", "json")
			var res admin.CreateResult
			if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
				t.Fatalf("create -o json: %v\n%s", err, r)
			}
			want := admin.CreateResult{Topic: topic, Created: false, Partitions: 3, ReplicationFactor: 1, Configs: map[string]string{}}
			if fmt.Sprint(res) != fmt.Sprint(want) {
				t.Fatalf("create --if-not-exists = %+v, want %+v (the existing topic, unchanged)", res, want)
			}
		}
		r = mustJobctl(t, tgt, "topic", "create", topic, "--if-not-exists")
		if !strings.Contains(r.Stdout, "already exists with 3 partition(s)") {
			t.Fatalf("unexpected output: %s", r)
		}
	})
}

// The global --topic/-t names the topic when no argument does.
func TestTopicUsesGlobalTopicFlag(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "flag")
		r := mustJobctl(t, tgt, "-t", topic, "topic", "create", "--partitions", "2", "-o", "json")
		var res admin.CreateResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || !res.Created || res.Topic != topic || res.Partitions != 2 {
			t.Fatalf("create via -t: %+v %v\n%s", res, err, r)
		}
		r = mustJobctl(t, tgt, "--topic", topic, "topic", "describe")
		if !strings.Contains(r.Stdout, "Topic:              "+topic) {
			t.Fatalf("describe via --topic did not describe %s: %s", topic, r)
		}
		// An argument overrides --topic.
		other := createTopic(t, tgt, 1)
		r = mustJobctl(t, tgt, "-t", topic, "topic", "describe", other, "-o", "json")
		if !strings.Contains(r.Stdout, `"topic": "`+other+`"`) {
			t.Fatalf("argument did not override -t: %s", r)
		}
	})
}

// On `topic create` --config is jobctl's config file as everywhere, topic
// settings are --topic-config/-C; JOBCTL_CONFIG works too.
func TestTopicCreateConfigFileFromEnv(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "env")
		file := filepath.Join(t.TempDir(), "jobctl.yaml")
		if err := os.WriteFile(file, []byte("topic: "+topic+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		mustJobctl(t, tgt, "--config", file, "topic", "create", "-C", "retention.ms=3600000")
		if d := topicDescribeJSON(t, tgt, topic); d.Configs["retention.ms"] != "3600000" {
			t.Fatalf("topic from the config file has configs %v", d.Configs)
		}
		other := uniqueName(t, "env2")
		if err := os.WriteFile(file, []byte("topic: "+other+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("JOBCTL_CONFIG", file)
		mustJobctl(t, tgt, "topic", "create", "--topic-config", "retention.ms=7200000")
		if d := topicDescribeJSON(t, tgt, other); d.Configs["retention.ms"] != "7200000" {
			t.Fatalf("topic from JOBCTL_CONFIG has configs %v", d.Configs)
		}
	})
}

func TestTopicCreateWithConfig(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "cfg")
		r := mustJobctl(t, tgt, "topic", "create", topic, "--partitions", "2",
			"--topic-config", "retention.ms=3600000", "-C", "cleanup.policy=compact,delete", "-o", "json")
		var res admin.CreateResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil || !res.Created {
			t.Fatalf("create: %v\n%s", err, r)
		}
		d := topicDescribeJSON(t, tgt, topic)
		if d.Configs["retention.ms"] != "3600000" || d.Configs["cleanup.policy"] != "compact,delete" {
			t.Fatalf("describe configs = %v, want retention.ms=3600000 and cleanup.policy=compact,delete", d.Configs)
		}
		r = mustJobctl(t, tgt, "topic", "describe", topic)
		if !strings.Contains(r.Stdout, "cleanup.policy=compact,delete retention.ms=3600000") {
			t.Fatalf("describe table does not show the configs: %s", r)
		}

		if !tgt.Real {
			return // kfake accepts any config name
		}
		// A setting Kafka does not know is refused by Kafka.
		bad := jobctl(t, tgt, "topic", "create", uniqueName(t, "badcfg"), "--topic-config", "no.such.setting=1")
		if bad.Code != 1 || !strings.Contains(bad.Stderr, "no.such.setting") && !strings.Contains(bad.Stderr, "Invalid Config") {
			t.Fatalf("unknown config: want exit 1 naming it, got %s", bad)
		}
	})
}

func TestTopicList(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "list")
		mustJobctl(t, tgt, "topic", "create", topic, "--partitions", "3")
		// Make sure the cluster has __consumer_offsets (real Kafka creates
		// it on a group's first commit), so --all has something to show.
		commitOffsetsAsAdmin(t, tgt, uniqueName(t, "g"), topic, map[int]int64{0: 0})

		r := mustJobctl(t, tgt, "topic", "list")
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(topic) + `\s+3\s+1\s*$`).MatchString(r.Stdout) {
			t.Fatalf("table has no row for %s with 3 partitions, replication factor 1:\n%s", topic, r)
		}
		if !strings.HasPrefix(r.Stdout, "TOPIC") || strings.Contains(r.Stdout, "__consumer_offsets") {
			t.Fatalf("want a table without internal topics:\n%s", r)
		}

		var list []admin.TopicSummary
		r = mustJobctl(t, tgt, "topic", "list", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			t.Fatalf("list -o json: %v\n%s", err, r)
		}
		found := false
		for _, s := range list {
			if s.Internal || strings.HasPrefix(s.Topic, "__") {
				t.Fatalf("internal topic %+v listed without --all", s)
			}
			if s.Topic == topic {
				found = true
				if s != (admin.TopicSummary{Topic: topic, Partitions: 3, ReplicationFactor: 1}) {
					t.Fatalf("list entry = %+v", s)
				}
			}
		}
		if !found {
			t.Fatalf("%s not in list -o json:\n%s", topic, r.Stdout)
		}

		r = mustJobctl(t, tgt, "topic", "list", "--all", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			t.Fatalf("list --all -o json: %v\n%s", err, r)
		}
		var internal []string
		for _, s := range list {
			if s.Internal {
				internal = append(internal, s.Topic)
			}
		}
		if tgt.Real && !strings.Contains(strings.Join(internal, ","), "__consumer_offsets") {
			t.Fatalf("list --all does not show __consumer_offsets as internal: %v", internal)
		}
		r = mustJobctl(t, tgt, "topic", "list", "--all")
		if !strings.Contains(r.Stdout, "INTERNAL") || !strings.Contains(r.Stdout, topic) {
			t.Fatalf("list --all table:\n%s", r)
		}
	})
}

// commitOffsetsAsAdmin commits offsets for group on topic the way an admin tool
// does: outside any generation.
func commitOffsetsAsAdmin(t *testing.T, tgt Target, group, topic string, offsets map[int]int64) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 20 * time.Second}
	var commits []kafka.OffsetCommit
	for p, o := range offsets {
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: o})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{
			GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: commits},
		})
		cancel()
		if err == nil {
			for _, p := range resp.Topics[topic] {
				err = errors.Join(err, p.Error)
			}
		}
		if err == nil {
			return
		}
		// The group coordinator may still be loading on a fresh cluster.
		if time.Now().After(deadline) {
			t.Fatalf("committing offsets of %s on %s: %v", group, topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// produceToPartitions writes n records to each partition in counts.
func produceToPartitions(t *testing.T, tgt Target, topic string, counts map[int]int) {
	t.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(tgt.Brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return int(m.Key[0]) }),
	}
	defer w.Close()
	var msgs []kafka.Message
	for p, n := range counts {
		for i := range n {
			msgs = append(msgs, kafka.Message{Key: []byte{byte(p)}, Value: fmt.Appendf(nil, "record %d", i)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}

func TestTopicDescribe(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 2)
		produceToPartitions(t, tgt, topic, map[int]int{0: 5, 1: 3})
		group := uniqueName(t, "g")
		commitOffsetsAsAdmin(t, tgt, group, topic, map[int]int64{0: 3})

		d := topicDescribeJSON(t, tgt, topic)
		if d.Topic != topic || d.ReplicationFactor != 1 || d.Internal || len(d.Partitions) != 2 {
			t.Fatalf("description = %+v", d)
		}
		wantHW := []int64{5, 3}
		for i, p := range d.Partitions {
			if p.Partition != i || p.Leader < 0 || len(p.Replicas) != 1 || p.Replicas[0] != p.Leader ||
				len(p.ISR) != 1 || p.StartOffset != 0 || p.HighWatermark != wantHW[i] || p.Error != "" {
				t.Fatalf("partition %d = %+v, want leader = only replica = ISR, offsets 0..%d", i, p, wantHW[i])
			}
		}
		var g *admin.GroupOffsets
		for i := range d.Groups {
			if d.Groups[i].Group == group {
				g = &d.Groups[i]
			}
		}
		if g == nil {
			t.Fatalf("group %s with commits on the topic is not in groups: %+v", group, d.Groups)
		}
		if g.Lag != 2 || len(g.Partitions) != 2 {
			t.Fatalf("group = %+v, want lag 2 over 2 partitions", g)
		}
		p0, p1 := g.Partitions[0], g.Partitions[1]
		if p0.Partition != 0 || p0.Committed != 3 || p0.HighWatermark != 5 || p0.Lag == nil || *p0.Lag != 2 {
			t.Fatalf("partition 0 of group = %+v, want committed 3, high watermark 5, lag 2", p0)
		}
		if p1.Partition != 1 || p1.Committed != -1 || p1.HighWatermark != 3 || p1.Lag != nil {
			t.Fatalf("partition 1 of group = %+v, want committed -1 and no lag", p1)
		}
		// Only groups with commits on this topic are listed.
		other := uniqueName(t, "other")
		commitOffsetsAsAdmin(t, tgt, other, createTopic(t, tgt, 1), map[int]int64{0: 0})
		for _, og := range topicDescribeJSON(t, tgt, topic).Groups {
			if og.Group == other {
				t.Fatalf("group %s without commits on %s is listed", other, topic)
			}
		}

		r := mustJobctl(t, tgt, "topic", "describe", topic)
		for _, re := range []string{
			`(?m)^PARTITION\s+LEADER\s+REPLICAS\s+ISR\s+START-OFFSET\s+HIGH-WATERMARK\s*$`,
			`(?m)^0\s+\d+\s+\d+\s+\d+\s+0\s+5\s*$`,
			`(?m)^1\s+\d+\s+\d+\s+\d+\s+0\s+3\s*$`,
			`(?m)^GROUP\s+PARTITION\s+COMMITTED\s+HIGH-WATERMARK\s+RECORD-LAG\s*$`,
			`(?m)^` + regexp.QuoteMeta(group) + `\s+0\s+3\s+5\s+2\s*$`,
			`(?m)^` + regexp.QuoteMeta(group) + `\s+1\s+-\s+3\s+-\s*$`,
		} {
			if !regexp.MustCompile(re).MatchString(r.Stdout) {
				t.Fatalf("describe table does not match %s:\n%s", re, r.Stdout)
			}
		}

		// A topic nobody consumes says so.
		r = mustJobctl(t, tgt, "topic", "describe", createTopic(t, tgt, 1))
		if !strings.Contains(r.Stdout, "No consumer group has committed offsets on this topic.") {
			t.Fatalf("describe of an unconsumed topic:\n%s", r)
		}
	})
}

func TestTopicAlter(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "alter")
		mustJobctl(t, tgt, "topic", "create", topic)
		if n := topicPartitionCount(t, tgt, topic); n != 1 {
			t.Fatalf("default partition count is %d, want 1", n)
		}

		r := mustJobctl(t, tgt, "topic", "alter", topic, "--partitions", "4", "-o", "json")
		var res admin.AlterResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("alter -o json: %v\n%s", err, r)
		}
		if res != (admin.AlterResult{Topic: topic, PreviousPartitions: 1, Partitions: 4}) {
			t.Fatalf("alter result = %+v", res)
		}
		if n := topicPartitionCount(t, tgt, topic); n != 4 {
			t.Fatalf("after alter the topic has %d partitions, want 4", n)
		}
		if d := topicDescribeJSON(t, tgt, topic); len(d.Partitions) != 4 {
			t.Fatalf("describe after alter shows %d partitions, want 4", len(d.Partitions))
		}

		wantMsg := fmt.Sprintf(`topic %q has 4 partitions; --partitions must be greater than 4 (partitions can only be added)`, topic)
		wantExit(t, jobctl(t, tgt, "topic", "alter", topic, "--partitions", "2"), 1, wantMsg)
		// kfake would accept the same count; jobctl refuses it everywhere.
		wantExit(t, jobctl(t, tgt, "topic", "alter", topic, "--partitions", "4"), 1, wantMsg)
		if n := topicPartitionCount(t, tgt, topic); n != 4 {
			t.Fatalf("a refused alter changed the topic to %d partitions", n)
		}

		r = mustJobctl(t, tgt, "topic", "alter", topic, "--partitions", "6")
		if !strings.Contains(r.Stdout, fmt.Sprintf("Topic %q now has 6 partitions (was 4).", topic)) {
			t.Fatalf("unexpected output: %s", r)
		}
	})
}

func TestTopicMissing(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "missing")
		want := fmt.Sprintf("topic %q does not exist", topic)
		wantExit(t, jobctl(t, tgt, "topic", "describe", topic), 1, want, "jobctl topic create")
		wantExit(t, jobctl(t, tgt, "topic", "describe", topic, "-o", "json"), 1, want)
		wantExit(t, jobctl(t, tgt, "topic", "alter", topic, "--partitions", "3"), 1, want)
		// Nothing was created by accident.
		var list []admin.TopicSummary
		r := mustJobctl(t, tgt, "topic", "list", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &list); err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Topic == topic {
				t.Fatalf("%s was created", topic)
			}
		}
	})
}

func TestTopicBadFlags(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "bad")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"topic", "create", topic, "--partitions", "0"}, "--partitions must be at least 1"},
			{[]string{"topic", "create", topic, "--partitions", "-3"}, "--partitions must be at least 1"},
			{[]string{"topic", "create", topic, "--partitions", "many"}, "--partitions"},
			{[]string{"topic", "create", topic, "--replication-factor", "0"}, "--replication-factor must be at least 1"},
			{[]string{"topic", "create", topic, "--topic-config", "retention.ms"}, `--topic-config: "retention.ms" is not key=value`},
			{[]string{"topic", "create", topic, "-C", "=1"}, "--topic-config"},
			{[]string{"topic", "create", topic, "-C", "a=1", "-C", "a=2"}, "--topic-config: a is given twice"},
			// The old form: --config is the config file now, and says so.
			{[]string{"topic", "create", topic, "--config", "retention.ms=1"}, "--topic-config retention.ms=1"},
			{[]string{"topic", "delete"}, "needs the topic's name"},
			{[]string{"topic", "delete", topic, "extra"}, "needs the topic's name"},
			{[]string{"topic", "create", "bad/name"}, "topic argument"},
			{[]string{"topic", "create", "a", "b"}, "accepts at most 1 arg"},
			{[]string{"topic", "alter", topic}, "--partitions is required"},
			{[]string{"topic", "alter", topic, "--partitions", "0"}, "--partitions must be at least 1"},
			{[]string{"topic", "describe", "a", "b"}, "accepts at most 1 arg"},
			{[]string{"topic", "list", "extra"}, "unknown command"},
			{[]string{"topic", "list", "--all=maybe"}, "--all"},
		} {
			wantExit(t, jobctl(t, tgt, tc.args...), 2, tc.want)
		}
		// None of them touched the cluster.
		r := mustJobctl(t, tgt, "topic", "list")
		if strings.Contains(r.Stdout, topic) {
			t.Fatalf("a refused command created %s", topic)
		}
	})
}

func TestTopicHelp(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		for _, sub := range []string{"create", "alter", "describe", "list", "delete"} {
			r := mustJobctl(t, tgt, "topic", sub, "--help")
			if !strings.Contains(r.Stdout, "Examples:") || !strings.Contains(r.Stdout, "JSON output (-o json)") {
				t.Fatalf("topic %s --help lacks examples or the JSON shape:\n%s", sub, r.Stdout)
			}
		}
	})
}

// The admin API itself: one Admin sees its own changes at once (kafka-go
// would answer from its metadata cache), and errors keep kafka's codes.
func TestAdminAPI(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		adm := admin.New(&kafka.Client{Addr: kafka.TCP(tgt.Brokers...), Timeout: 20 * time.Second, Transport: &kafka.Transport{}})
		topic := uniqueName(t, "api")
		if _, err := adm.CreateTopic(ctx, topic, 1, 1, nil, false); err != nil {
			t.Fatal(err)
		}
		_, err := adm.CreateTopic(ctx, topic, 1, 1, nil, false)
		if !errors.Is(err, kafka.TopicAlreadyExists) {
			t.Fatalf("second create: want kafka.TopicAlreadyExists, got %v", err)
		}
		if _, err := adm.AlterPartitions(ctx, topic, 3); err != nil {
			t.Fatal(err)
		}
		d, err := adm.DescribeTopic(ctx, topic)
		if err != nil || len(d.Partitions) != 3 {
			t.Fatalf("describe right after alter: %v, %+v", err, d)
		}
		for _, p := range d.Partitions {
			if p.HighWatermark != 0 || p.Leader < 0 {
				t.Fatalf("new partition %+v not readable", p)
			}
		}
		_, err = adm.AlterPartitions(ctx, topic, 3)
		var pce *admin.PartitionCountError
		if !errors.As(err, &pce) || pce.Current != 3 {
			t.Fatalf("alter to the same count: want PartitionCountError with current 3, got %v", err)
		}
		_, err = adm.DescribeTopic(ctx, uniqueName(t, "none"))
		if !errors.Is(err, admin.ErrUnknownTopic) || !errors.Is(err, kafka.UnknownTopicOrPartition) {
			t.Fatalf("describe of a missing topic: %v", err)
		}
		if _, err := adm.CreateTopic(ctx, uniqueName(t, "rf"), 1, 99, nil, false); !errors.Is(err, kafka.InvalidReplicationFactor) {
			t.Fatalf("replication factor 99: want kafka.InvalidReplicationFactor, got %v", err)
		}
	})
}

// topic delete: refused without --yes where nobody can confirm (exit 2,
// nothing deleted), deletes the topic alone by default and names the
// auxiliary topics it kept, and with --with-aux deletes those too.
func TestTopicDelete(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := uniqueName(t, "del")
		mustJobctl(t, tgt, "topic", "create", topic, "--partitions", "2")
		mustJobctl(t, tgt, "-t", topic, "produce", "--count", "7")
		for _, aux := range []string{topic + ".dlq", topic + ".control"} {
			mustJobctl(t, tgt, "topic", "create", aux)
		}

		// In-process stdin is not a terminal.
		wantExit(t, jobctl(t, tgt, "topic", "delete", topic), 2, "pass --yes", topic)
		if n := topicPartitionCount(t, tgt, topic); n != 2 {
			t.Fatalf("refused delete changed the topic: %d partitions", n)
		}

		r := mustJobctl(t, tgt, "topic", "delete", topic, "--yes", "-o", "json")
		var res struct {
			Deleted []admin.TopicSize `json:"deleted"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("delete -o json: %v\n%s", err, r)
		}
		want := []admin.TopicSize{{Topic: topic, Partitions: 2, Records: 7}}
		if fmt.Sprint(res.Deleted) != fmt.Sprint(want) {
			t.Fatalf("deleted %+v, want %+v", res.Deleted, want)
		}
		// Gone at once for the next command; the auxiliary topics are kept.
		wantExit(t, jobctl(t, tgt, "topic", "describe", topic), 1, fmt.Sprintf("topic %q does not exist", topic))
		topicDescribeJSON(t, tgt, topic+".dlq")
		wantExit(t, jobctl(t, tgt, "topic", "delete", topic, "--yes"), 1, fmt.Sprintf("topic %q does not exist", topic))

		// Recreated, then deleted with its auxiliary topics, all named.
		mustJobctl(t, tgt, "topic", "create", topic)
		r = mustJobctl(t, tgt, "topic", "delete", topic, "--yes")
		if !strings.Contains(r.Stdout, fmt.Sprintf("Deleted topic %q (1 partitions, 0 records).", topic)) ||
			!strings.Contains(r.Stdout, "Kept its auxiliary topics "+topic+".dlq, "+topic+".control (delete them with --with-aux)") {
			t.Fatalf("delete without --with-aux: %s", r)
		}
		mustJobctl(t, tgt, "topic", "create", topic)
		r = mustJobctl(t, tgt, "topic", "delete", topic, "--with-aux", "--yes")
		for _, name := range []string{topic, topic + ".dlq", topic + ".control"} {
			if !strings.Contains(r.Stdout, fmt.Sprintf("Deleted topic %q", name)) {
				t.Fatalf("--with-aux did not name %s: %s", name, r)
			}
			wantExit(t, jobctl(t, tgt, "topic", "describe", name), 1, "does not exist")
		}
		if strings.Contains(r.Stdout, ".delay") || strings.Contains(r.Stdout, "Kept") {
			t.Fatalf("--with-aux named a topic that does not exist or kept one: %s", r)
		}
	})
}

// On a terminal (a pty from util-linux script) topic delete asks, and
// only "y" deletes.
func TestTopicDeleteOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give jobctl a terminal")
	}
	forEachBroker(t, func(t *testing.T, tgt Target) {
		topic := createTopic(t, tgt, 3)
		ask := func(answer string) (string, int) {
			c := exec.Command(scriptBin, "-qec", jobctlBin+" topic delete "+topic, "/dev/null")
			c.Env = append(os.Environ(), "JOBCTL_BROKERS="+strings.Join(tgt.Brokers, ","))
			c.Dir = t.TempDir()
			c.Stdin = strings.NewReader(answer + "\n")
			out, err := c.CombinedOutput()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			return string(out), c.ProcessState.ExitCode()
		}
		prompt := fmt.Sprintf("Delete topic %s with 3 partitions and 0 records? [y/N]", topic)
		out, code := ask("n")
		if code != 1 || !strings.Contains(out, prompt) || !strings.Contains(out, "nothing deleted") {
			t.Fatalf("answer n: exit %d\n%s", code, out)
		}
		if n := topicPartitionCount(t, tgt, topic); n != 3 {
			t.Fatalf("topic changed after n: %d partitions", n)
		}
		out, code = ask("y")
		if code != 0 || !strings.Contains(out, prompt) || !strings.Contains(out, fmt.Sprintf("Deleted topic %q (3 partitions, 0 records).", topic)) {
			t.Fatalf("answer y: exit %d\n%s", code, out)
		}
		wantExit(t, jobctl(t, tgt, "topic", "describe", topic), 1, "does not exist")
	})
}
