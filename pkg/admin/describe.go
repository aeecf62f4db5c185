package admin

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/segmentio/kafka-go"
)

// TopicDescription is everything `jobctl topic describe` shows. The JSON
// names are part of jobctl's documented output.
type TopicDescription struct {
	Topic             string `json:"topic"`
	Internal          bool   `json:"internal"`
	ReplicationFactor int    `json:"replication_factor"`
	// Configs are the settings made on this topic (dynamic topic configs);
	// broker defaults are left out.
	Configs    map[string]string `json:"configs"`
	Partitions []PartitionInfo   `json:"partitions"`
	// Groups are the consumer groups with a committed offset on at least
	// one partition of the topic, by name.
	Groups []GroupOffsets `json:"groups"`
}

// PartitionInfo is one partition of a topic. Broker ids are the brokers'
// node ids; -1 means none (no leader). Offsets are -1 when unknown, and
// then Error says why.
type PartitionInfo struct {
	Partition     int    `json:"partition"`
	Leader        int    `json:"leader"`
	Replicas      []int  `json:"replicas"`
	ISR           []int  `json:"isr"`
	StartOffset   int64  `json:"start_offset"`
	HighWatermark int64  `json:"high_watermark"`
	Error         string `json:"error,omitempty"`
}

// GroupOffsets is one consumer group's position on the topic.
type GroupOffsets struct {
	Group string `json:"group"`
	// Lag is the sum of the partitions' known lags.
	Lag int64 `json:"lag"`
	// Pending is the sum of the partitions' pending jobs; set only when
	// they were counted (topic describe --pending).
	Pending    *int64           `json:"pending,omitempty"`
	Partitions []GroupPartition `json:"partitions"`
}

// GroupPartition is a group's committed offset on one partition.
type GroupPartition struct {
	Partition int `json:"partition"`
	// Committed is the next offset the group will read, -1 if it has
	// committed nothing on this partition.
	Committed     int64 `json:"committed"`
	HighWatermark int64 `json:"high_watermark"`
	// Lag is HighWatermark - Committed: records (of every kind, other
	// groups' events included) the group has not read yet. It is null when
	// nothing is committed, because where the group would start then
	// depends on the consumer's own reset policy.
	Lag *int64 `json:"lag"`
	// Pending is the jobs on the partition the group has not finished
	// (docs/runtime.md, "Status per group"); set only when counted (topic
	// describe --pending), which reads the whole topic.
	Pending *int64 `json:"pending,omitempty"`
}

// groupFetchConcurrency bounds the OffsetFetch requests in flight: a shared
// cluster can have hundreds of groups, each answered by its coordinator.
const groupFetchConcurrency = 8

// configSourceDynamicTopic is DescribeConfigs' DYNAMIC_TOPIC_CONFIG: a
// value set on the topic itself.
const configSourceDynamicTopic = 1

// DescribeTopic describes topic: its partitions with leader, replicas, ISR
// and offsets, its own configs, and the committed offset and lag of every
// consumer group that has committed on it.
//
// A topic that does not exist is an error naming it (errors.Is
// ErrUnknownTopic) and a nil description. Errors on single partitions,
// groups or configs do not hide the rest: the description is returned
// with what could be read, together with all those errors joined.
func (a *Admin) DescribeTopic(ctx context.Context, topic string) (*TopicDescription, error) {
	c, done := a.session()
	defer done()
	t, err := topicMetadata(ctx, c, nil, topic)
	if err != nil {
		if errors.Is(err, ErrUnknownTopic) {
			return nil, err
		}
		return nil, fmt.Errorf("describing topic %q: %w", topic, err)
	}
	sum := summarize(t)
	d := &TopicDescription{
		Topic: topic, Internal: sum.Internal, ReplicationFactor: sum.ReplicationFactor,
		Configs: map[string]string{}, Partitions: make([]PartitionInfo, 0, len(t.Partitions)), Groups: []GroupOffsets{},
	}
	var errs []error
	var withLeader []int
	for _, p := range t.Partitions {
		pi := PartitionInfo{
			Partition: int(p.PartitionIndex), Leader: int(p.LeaderID),
			Replicas: ints(p.ReplicaNodes), ISR: ints(p.IsrNodes),
			StartOffset: -1, HighWatermark: -1,
		}
		if err := codeError(p.ErrorCode); err != nil {
			// REPLICA_NOT_AVAILABLE still comes with a leader: the offsets
			// can be read, the error is reported all the same.
			pi.Error = err.Error()
			errs = append(errs, partitionError("describing", topic, pi.Partition, err))
		}
		if pi.Leader >= 0 {
			withLeader = append(withLeader, pi.Partition)
		} else if pi.Error == "" {
			pi.Error = "no leader"
			errs = append(errs, partitionError("describing", topic, pi.Partition, errors.New("no leader")))
		}
		d.Partitions = append(d.Partitions, pi)
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Partition < d.Partitions[j].Partition })

	errs = append(errs, a.readOffsets(ctx, c, d, withLeader)...)
	configs, err := topicConfigs(ctx, c, topic)
	if err != nil {
		errs = append(errs, err)
	}
	d.Configs = configs
	groups, gerrs := a.groupOffsets(ctx, c, d)
	d.Groups = groups
	errs = append(errs, gerrs...)
	return d, errors.Join(errs...)
}

// readOffsets fills in the start offset and high watermark of partitions.
func (a *Admin) readOffsets(ctx context.Context, c *kafka.Client, d *TopicDescription, partitions []int) []error {
	if len(partitions) == 0 {
		return nil
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(partitions))
	for _, p := range partitions {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{d.Topic: reqs}})
	if err != nil {
		return []error{fmt.Errorf("reading offsets of topic %q: %w", d.Topic, err)}
	}
	byID := map[int]kafka.PartitionOffsets{}
	for _, po := range resp.Topics[d.Topic] {
		byID[po.Partition] = po
	}
	var errs []error
	for i := range d.Partitions {
		pi := &d.Partitions[i]
		if pi.Leader < 0 {
			continue
		}
		po, ok := byID[pi.Partition]
		switch {
		case !ok:
			err = errors.New("the broker sent no offsets")
		case po.Error != nil:
			err = po.Error
		default:
			pi.StartOffset, pi.HighWatermark = po.FirstOffset, po.LastOffset
			continue
		}
		if pi.Error == "" {
			pi.Error = err.Error()
		}
		errs = append(errs, partitionError("reading offsets of", d.Topic, pi.Partition, err))
	}
	return errs
}

// topicConfigs returns the configs set on topic itself.
func topicConfigs(ctx context.Context, c *kafka.Client, topic string) (map[string]string, error) {
	out := map[string]string{}
	resp, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
	}}})
	if err != nil {
		return out, fmt.Errorf("reading configs of topic %q: %w", topic, err)
	}
	var errs []error
	for _, r := range resp.Resources {
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("reading configs of topic %q: %w", topic, r.Error))
			continue
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigSource == configSourceDynamicTopic {
				out[e.ConfigName] = e.ConfigValue
			}
		}
	}
	return out, errors.Join(errs...)
}

// groupOffsets finds the groups with commits on d's topic and their lag.
func (a *Admin) groupOffsets(ctx context.Context, c *kafka.Client, d *TopicDescription) ([]GroupOffsets, []error) {
	lg, err := c.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err == nil {
		err = lg.Error
	}
	if err != nil {
		return []GroupOffsets{}, []error{fmt.Errorf("listing consumer groups: %w", err)}
	}
	ids := make([]int, len(d.Partitions))
	hw := map[int]int64{}
	for i, p := range d.Partitions {
		ids[i] = p.Partition
		hw[p.Partition] = p.HighWatermark
	}
	names := make([]string, 0, len(lg.Groups))
	seen := map[string]bool{}
	for _, g := range lg.Groups {
		if !seen[g.GroupID] {
			seen[g.GroupID] = true
			names = append(names, g.GroupID)
		}
	}
	sort.Strings(names)

	results := make([]*GroupOffsets, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, groupFetchConcurrency)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i], errs[i] = fetchGroup(ctx, c, name, d.Topic, ids, hw)
		}()
	}
	wg.Wait()
	out := []GroupOffsets{}
	for _, r := range results {
		if r != nil {
			out = append(out, *r)
		}
	}
	var all []error
	for _, e := range errs {
		if e != nil {
			all = append(all, e)
		}
	}
	return out, all
}

// fetchGroup reads group's committed offsets on topic; nil when it has
// none there.
func fetchGroup(ctx context.Context, c *kafka.Client, group, topic string, ids []int, hw map[int]int64) (*GroupOffsets, error) {
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err == nil {
		err = resp.Error
	}
	if errors.Is(err, kafka.GroupIdNotFound) {
		// Deleted between ListGroups and now: it has no commits anywhere.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading committed offsets of group %q: %w", group, err)
	}
	g := &GroupOffsets{Group: group, Partitions: []GroupPartition{}}
	var errs []error
	committed := false
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			errs = append(errs, fmt.Errorf("reading committed offset of group %q on %s/%d: %w", group, topic, p.Partition, p.Error))
			continue
		}
		gp := GroupPartition{Partition: p.Partition, Committed: p.CommittedOffset, HighWatermark: hw[p.Partition]}
		if gp.Committed >= 0 {
			committed = true
			if gp.HighWatermark >= 0 {
				// The high watermark was read a moment before the commit
				// offsets; a commit made in between can be past it.
				lag := max(gp.HighWatermark-gp.Committed, 0)
				gp.Lag = &lag
				g.Lag += lag
			}
		} else {
			gp.Committed = -1
		}
		g.Partitions = append(g.Partitions, gp)
	}
	sort.Slice(g.Partitions, func(i, j int) bool { return g.Partitions[i].Partition < g.Partitions[j].Partition })
	if !committed {
		// Its errors still count: a group whose every partition failed may
		// well have commits here.
		return nil, errors.Join(errs...)
	}
	return g, errors.Join(errs...)
}

func ints(in []int32) []int {
	out := make([]int, len(in))
	for i, v := range in {
		out[i] = int(v)
	}
	return out
}
