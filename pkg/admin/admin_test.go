package admin

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

func TestParseConfigs(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: nil, want: map[string]string{}},
		{in: []string{"retention.ms=3600000"}, want: map[string]string{"retention.ms": "3600000"}},
		{
			in:   []string{"cleanup.policy=compact,delete", "message.timestamp.type=CreateTime"},
			want: map[string]string{"cleanup.policy": "compact,delete", "message.timestamp.type": "CreateTime"},
		},
		{in: []string{"a=b=c"}, want: map[string]string{"a": "b=c"}},
		{in: []string{" retention.ms =5"}, want: map[string]string{"retention.ms": "5"}},
		{in: []string{"x=1", "x=1"}, want: map[string]string{"x": "1"}},
		{in: []string{"k="}, want: map[string]string{"k": ""}},
		{in: []string{"retention.ms"}, wantErr: `"retention.ms" is not key=value`},
		{in: []string{"=5"}, wantErr: `"=5" has no key`},
		{in: []string{"retention ms=5"}, wantErr: `key "retention ms" has ' '`},
		{in: []string{"x=1", "x=2"}, wantErr: `x is given twice ("1" and "2")`},
	} {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			got, err := ParseConfigs(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseConfigs(%q) error = %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfigs(%q): %v", tc.in, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("ParseConfigs(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestFoldTopicErrorsKeepsCodes(t *testing.T) {
	err := foldTopicErrors("creating topic", map[string]error{
		"b": fmt.Errorf("%w: Topic 'b' already exists.", kafka.TopicAlreadyExists),
		"a": kafka.InvalidReplicationFactor,
		"c": nil,
	}, "a", "b", "c")
	if err == nil {
		t.Fatal("want an error")
	}
	if !errors.Is(err, kafka.TopicAlreadyExists) || !errors.Is(err, kafka.InvalidReplicationFactor) {
		t.Fatalf("errors.Is lost a code: %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `topic "b" already exists`) {
		t.Errorf("message does not say the topic exists: %q", msg)
	}
	if ia, ib := strings.Index(msg, `"a"`), strings.Index(msg, `"b"`); ia < 0 || ib < 0 || ia > ib {
		t.Errorf("want both topics, in name order: %q", msg)
	}
	if strings.Contains(msg, `"c"`) {
		t.Errorf("topic without an error is in the message: %q", msg)
	}
}

func TestFoldTopicErrorsAllNil(t *testing.T) {
	if err := foldTopicErrors("creating topic", map[string]error{"a": nil}, "a"); err != nil {
		t.Fatalf("want nil, got %v", err)
	}
}

func TestFoldTopicErrorsMissingResult(t *testing.T) {
	err := foldTopicErrors("adding partitions to topic", map[string]error{}, "jobs")
	if err == nil || !strings.Contains(err.Error(), `"jobs": the broker sent no result`) {
		t.Fatalf("a topic the broker did not answer for must be an error, got %v", err)
	}
}

func TestFoldTopicErrorsUnknownTopic(t *testing.T) {
	err := foldTopicErrors("adding partitions to topic", map[string]error{"gone": kafka.UnknownTopicOrPartition}, "gone")
	if !errors.Is(err, ErrUnknownTopic) || !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("want ErrUnknownTopic and the kafka code, got %v", err)
	}
	if !strings.Contains(err.Error(), `topic "gone" does not exist`) {
		t.Fatalf("message does not name the topic: %v", err)
	}
}

func TestUnknownTopicError(t *testing.T) {
	var err error = &unknownTopicError{"jobs"}
	if !errors.Is(err, ErrUnknownTopic) || !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatal("unknownTopicError must match ErrUnknownTopic and kafka.UnknownTopicOrPartition")
	}
	if got := fmt.Errorf("describing: %w", err).Error(); got != `describing: topic "jobs" does not exist` {
		t.Fatalf("message = %q", got)
	}
}

func TestPartitionCountErrorNamesCurrentCount(t *testing.T) {
	err := error(&PartitionCountError{Topic: "job-status", Current: 4, Requested: 2})
	want := `topic "job-status" has 4 partitions; the new count must be greater than 4, not 2 (partitions can only be added)`
	if err.Error() != want {
		t.Fatalf("got %q, want %q", err, want)
	}
	var pce *PartitionCountError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &pce) || pce.Current != 4 {
		t.Fatal("errors.As must find the counts")
	}
}

func TestCodeError(t *testing.T) {
	if codeError(0) != nil {
		t.Fatal("code 0 is no error")
	}
	if !errors.Is(codeError(5), kafka.LeaderNotAvailable) {
		t.Fatal("code 5 must be LeaderNotAvailable")
	}
}

func TestSummarize(t *testing.T) {
	got := summarize(metadataAPI.ResponseTopic{Name: "__consumer_offsets", IsInternal: true, Partitions: []metadataAPI.ResponsePartition{
		{PartitionIndex: 0, ReplicaNodes: []int32{1, 2, 3}},
		{PartitionIndex: 1, ReplicaNodes: []int32{1, 2}},
	}})
	want := TopicSummary{Topic: "__consumer_offsets", Partitions: 2, ReplicationFactor: 3, Internal: true}
	if got != want {
		t.Fatalf("summarize = %+v, want %+v", got, want)
	}
}

func TestIsInternal(t *testing.T) {
	for name, want := range map[string]bool{
		"__consumer_offsets": true, "__transaction_state": true, "job-status": false, "_schemas": false,
	} {
		if got := IsInternal(name, false); got != want {
			t.Errorf("IsInternal(%q) = %v, want %v", name, got, want)
		}
	}
	if !IsInternal("anything", true) {
		t.Error("a topic the broker flags internal is internal")
	}
}
