package admin

import (
	"reflect"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/consumer"
)

func TestDecodeAssignment(t *testing.T) {
	// As kafka-go's SyncGroup encodes jobctl-cooperative's assignment:
	// its user data is a version byte and the partition count.
	ours, err := protocol.Marshal(consumer.MaxVersionSupported, consumer.Assignment{
		Version:            consumer.MaxVersionSupported,
		AssignedPartitions: []consumer.TopicPartition{{Topic: "jobs", Partitions: []int32{4, 1}}, {Topic: "other", Partitions: []int32{0}}},
		UserData:           []byte{1, 0, 0, 0, 6},
	})
	if err != nil {
		t.Fatal(err)
	}
	// As the Java client writes a v3 assignment with null user data.
	java := []byte{0, 3, 0, 0, 0, 1, 0, 4, 'j', 'o', 'b', 's', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff}
	for name, c := range map[string]struct {
		in   []byte
		want map[string][]int
	}{
		"jobctl-cooperative": {ours, map[string][]int{"jobs": {4, 1}, "other": {0}}},
		"java range":         {java, map[string][]int{"jobs": {0, 2}}},
		"no topics":          {[]byte{0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, map[string][]int{}},
	} {
		got, err := decodeAssignment(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, c.want)
		}
	}
	for name, in := range map[string][]byte{
		"cut in a topic name":   java[:10],
		"huge partition count":  {0, 0, 0, 0, 0, 1, 0, 1, 'j', 0x7f, 0xff, 0xff, 0xff},
		"cut in the partitions": java[:20],
	} {
		if _, err := decodeAssignment(in); err == nil || !strings.Contains(err.Error(), "left") {
			t.Errorf("%s: error %v, want one saying what is left", name, err)
		}
	}
}
