package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/admin"
	"github.com/jobctl/jobctl/pkg/config"
	"github.com/jobctl/jobctl/pkg/ledger"
	"github.com/jobctl/jobctl/pkg/output"
	"github.com/jobctl/jobctl/pkg/schedule"
	"github.com/jobctl/jobctl/pkg/view"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// topicAdmin is what the topic commands need from an admin client.
type topicAdmin interface {
	CreateTopic(ctx context.Context, name string, partitions, replicationFactor int, configs map[string]string, ifNotExists bool) (admin.CreateResult, error)
	AlterPartitions(ctx context.Context, topic string, n int) (admin.AlterResult, error)
	DescribeTopic(ctx context.Context, topic string) (*admin.TopicDescription, error)
	ListTopics(ctx context.Context, includeInternal bool) ([]admin.TopicSummary, error)
	Size(ctx context.Context, topic string) (admin.TopicSize, error)
	DeleteTopics(ctx context.Context, topics ...string) error
}

var _ topicAdmin = (*admin.Admin)(nil)

// topicCmdTimeout bounds one topic command, including the wait for a
// change to reach every broker.
const topicCmdTimeout = 2 * time.Minute

// topicOptions is what every topic subcommand shares.
type topicOptions struct {
	app *App
	// newAdmin builds the admin client once the configuration is loaded.
	newAdmin func() (topicAdmin, error)
}

func newTopicCmd(app *App) *cobra.Command {
	opts := &topicOptions{app: app, newAdmin: func() (topicAdmin, error) {
		conn, err := app.Conn()
		if err != nil {
			return nil, err
		}
		return admin.New(conn.Client()), nil
	}}
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, grow, describe, list and delete topics",
		Long: `Administer Kafka topics, by default the job topic (--topic/-t, env
JOBCTL_TOPIC, config key topic, default job-status). Each subcommand also
takes the topic as an optional argument, which overrides --topic (delete
requires it: there is no default for a deletion):

  jobctl topic describe               describes job-status
  jobctl topic describe other-topic   describes other-topic

Changes (create, alter, delete) return once every broker's metadata shows
the topic's partitions with leaders (after delete: no longer shows the
topic), so the next command can use them at once.
Each command gives up after ` + topicCmdTimeout.String() + `.

With -o json every subcommand prints one JSON document whose shape is
shown in its --help; the table output is for people and may change.`,
		Example: `  jobctl topic create --partitions 4 --replication-factor 3
  jobctl topic alter --partitions 8
  jobctl topic describe
  jobctl topic list --all -o json
  jobctl topic delete old-jobs --with-aux --yes`,
	}
	cmd.AddCommand(
		newTopicCreateCmd(opts),
		newTopicAlterCmd(opts),
		newTopicDescribeCmd(opts),
		newTopicListCmd(opts),
		newTopicDeleteCmd(opts),
	)
	return cmd
}

// topic is the positional argument if given, else the configured topic.
func (o *topicOptions) topic(args []string) (string, error) {
	if len(args) == 0 {
		return o.app.Config().Topic, nil
	}
	if err := config.CheckTopicName(args[0]); err != nil {
		return "", usageErrorf("topic argument: %v", err)
	}
	return args[0], nil
}

// run builds the admin client and calls fn with a bounded context.
func (o *topicOptions) run(cmd *cobra.Command, fn func(ctx context.Context, adm topicAdmin) error) error {
	adm, err := o.newAdmin()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), topicCmdTimeout)
	defer cancel()
	return fn(ctx, adm)
}

// unknownTopicHint adds how to fix a missing topic to err.
func unknownTopicHint(err error, topic string) error {
	if errors.Is(err, admin.ErrUnknownTopic) {
		return fmt.Errorf("%w (create it with 'jobctl topic create %s')", err, topic)
	}
	return err
}

type topicCreateOptions struct {
	*topicOptions
	Partitions        int
	ReplicationFactor int
	Configs           []string
	IfNotExists       bool
}

func newTopicCreateCmd(parent *topicOptions) *cobra.Command {
	opts := &topicCreateOptions{topicOptions: parent}
	cmd := &cobra.Command{
		Use:   "create [TOPIC]",
		Short: "Create the topic",
		Long: `Create the topic with --partitions partitions, each kept on
--replication-factor brokers, and any topic settings given with
--topic-config (-C).

The partition count caps how many workers of one group process jobs in
parallel: each partition is read by one group member at a time. It can be
raised later with 'jobctl topic alter', never lowered. A replication factor
of 3 (with min.insync.replicas=2) survives the loss of a broker; 1 is for
development. It cannot exceed the number of brokers.

--topic-config takes one key=value per flag and may be repeated; values
may contain commas. The broker checks the names and values. --config is
jobctl's config file here as on every command (kafka-topics.sh users: its
--config key=value is --topic-config key=value here).

Creating a topic that exists fails (exit 1, "already exists") unless
--if-not-exists is given; then the existing topic is left unchanged and
reported, and the exit code is 0.

JSON output (-o json):
  {"topic": "job-status", "created": true, "partitions": 4,
   "replication_factor": 1, "configs": {"retention.ms": "604800000"}}
"created" is false when the topic already existed; partitions and
replication_factor are then the existing topic's and configs is empty.`,
		Example: `  jobctl topic create --partitions 4
  jobctl topic create --partitions 12 --replication-factor 3 --topic-config min.insync.replicas=2
  jobctl topic create -C retention.ms=604800000 -C cleanup.policy=compact,delete
  jobctl topic create other-topic --if-not-exists`,
		// Args runs before the configuration is loaded: a topic setting
		// given the old way (--config key=value) must be explained before
		// it is taken for a config file that does not exist.
		Args: func(cmd *cobra.Command, args []string) error {
			if err := oldTopicConfigForm(cmd); err != nil {
				return err
			}
			return cobra.MaximumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Partitions < 1 {
				return usageErrorf("--partitions must be at least 1, got %d", opts.Partitions)
			}
			if opts.ReplicationFactor < 1 {
				return usageErrorf("--replication-factor must be at least 1, got %d", opts.ReplicationFactor)
			}
			configs, err := admin.ParseConfigs(opts.Configs)
			if err != nil {
				return usageErrorf("--topic-config: %w", err)
			}
			topic, err := opts.topic(args)
			if err != nil {
				return err
			}
			return opts.run(cmd, func(ctx context.Context, adm topicAdmin) error {
				res, err := adm.CreateTopic(ctx, topic, opts.Partitions, opts.ReplicationFactor, configs, opts.IfNotExists)
				if err != nil {
					return err
				}
				opts.app.Logger.Debug("topic create", "topic", topic, "created", res.Created,
					"partitions", res.Partitions, "replication_factor", res.ReplicationFactor)
				return printCreateResult(opts.app, res)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Partitions, "partitions", 1, "number of partitions (at least 1)")
	f.IntVar(&opts.ReplicationFactor, "replication-factor", 1, "copies of each partition, on different brokers (at most the number of brokers)")
	f.StringArrayVarP(&opts.Configs, "topic-config", "C", nil, "topic setting as key=value, e.g. retention.ms=604800000 (repeatable)")
	f.BoolVar(&opts.IfNotExists, "if-not-exists", false, "succeed without changes if the topic already exists")
	return cmd
}

// oldTopicConfigForm refuses --config key=value on topic create. --config
// is jobctl's config file; topic settings were given with --config before,
// as kafka-topics.sh does, and a value that is key=value and names no file
// is surely one of those: say so instead of "no such file".
func oldTopicConfigForm(cmd *cobra.Command) error {
	f := cmd.Flags().Lookup("config")
	if f == nil || !f.Changed || !strings.Contains(f.Value.String(), "=") {
		return nil
	}
	if _, err := os.Stat(f.Value.String()); err == nil {
		return nil
	}
	return &usageError{
		err:  fmt.Errorf("--config %s: --config is jobctl's config file, not a topic setting", f.Value.String()),
		hint: fmt.Sprintf("Give topic settings with --topic-config (-C): jobctl topic create --topic-config %s", f.Value.String()),
	}
}

func printCreateResult(app *App, res admin.CreateResult) error {
	if app.Printer().Format == output.JSON {
		return output.WriteJSON(app.IO.Out, res)
	}
	if !res.Created {
		_, err := fmt.Fprintf(app.IO.Out, "Topic %q already exists with %d partition(s), replication factor %d; nothing changed.\n",
			res.Topic, res.Partitions, res.ReplicationFactor)
		return err
	}
	msg := fmt.Sprintf("Created topic %q with %d partition(s), replication factor %d", res.Topic, res.Partitions, res.ReplicationFactor)
	if len(res.Configs) > 0 {
		msg += ", configs " + formatConfigs(res.Configs)
	}
	_, err := fmt.Fprintln(app.IO.Out, msg+".")
	return err
}

type topicAlterOptions struct {
	*topicOptions
	Partitions int
}

func newTopicAlterCmd(parent *topicOptions) *cobra.Command {
	opts := &topicAlterOptions{topicOptions: parent}
	cmd := &cobra.Command{
		Use:   "alter [TOPIC] --partitions N",
		Short: "Add partitions to the topic",
		Long: `Raise the topic's partition count to --partitions, the new total.

Partitions can only be added. jobctl reads the current count first and
refuses (exit 1, before changing anything) a count that is not greater.

More partitions let more workers of a group run in parallel. New jobs are
placed by hashing their id over the new count, so a job id maps to a
different partition than before; jobctl keeps each job's follow-up events
(DONE, FAILED) on the partition its NEW event went to, so every job's
history stays in order. Running producers and consumers pick up the new
partitions within seconds.

JSON output (-o json):
  {"topic": "job-status", "previous_partitions": 1, "partitions": 4}`,
		Example: `  jobctl topic alter --partitions 8
  jobctl topic alter other-topic --partitions 4 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("partitions") {
				return usageErrorf("--partitions is required: the new total number of partitions")
			}
			if opts.Partitions < 1 {
				return usageErrorf("--partitions must be at least 1, got %d", opts.Partitions)
			}
			topic, err := opts.topic(args)
			if err != nil {
				return err
			}
			return opts.run(cmd, func(ctx context.Context, adm topicAdmin) error {
				res, err := adm.AlterPartitions(ctx, topic, opts.Partitions)
				var countErr *admin.PartitionCountError
				if errors.As(err, &countErr) {
					return fmt.Errorf("topic %q has %d partitions; --partitions must be greater than %d (partitions can only be added)",
						countErr.Topic, countErr.Current, countErr.Current)
				}
				if err != nil {
					return unknownTopicHint(err, topic)
				}
				opts.app.Logger.Debug("topic alter", "topic", topic, "previous_partitions", res.PreviousPartitions, "partitions", res.Partitions)
				if opts.app.Printer().Format == output.JSON {
					return output.WriteJSON(opts.app.IO.Out, res)
				}
				_, err = fmt.Fprintf(opts.app.IO.Out, "Topic %q now has %d partitions (was %d).\n", res.Topic, res.Partitions, res.PreviousPartitions)
				return err
			})
		},
	}
	cmd.Flags().IntVar(&opts.Partitions, "partitions", 0, "new total number of partitions, greater than the current one (required)")
	return cmd
}

type topicDescribeOptions struct {
	*topicOptions
	Pending bool
}

func newTopicDescribeCmd(parent *topicOptions) *cobra.Command {
	opts := &topicDescribeOptions{topicOptions: parent}
	cmd := &cobra.Command{
		Use:   "describe [TOPIC]",
		Short: "Show the topic's partitions, settings and consumer group lag",
		Long: `Show the topic's partitions (leader, replicas, in-sync replicas, start
offset and high watermark), the settings made on the topic, and for every
consumer group that has committed offsets on it, the committed offset and
lag of each partition.

RECORD-LAG is high watermark minus committed offset: records the group
has not read yet, of every kind: with several groups on the topic, the
other groups' RUNNING/DONE events count too, so it is not the number of
jobs waiting. A partition on which the group has committed nothing shows
"-" as committed offset and record lag (committed -1 and lag null in
JSON).

--pending also counts the jobs each group has not finished (PENDING;
"pending" in JSON): jobs whose latest run that group has not ended with
DONE, DEAD or CANCELED (NEW, SCHEDULED, RUNNING, a FAILED waiting for its
retry). A job the group has not touched yet counts unless the group has
read the partition to its end. This reads the whole topic into a job view
(like 'jobctl jobs list'), so it is not done without the flag; the rule
is in docs/runtime.md ("Status per group").

If some partitions or groups cannot be read (no leader, a broker down),
the rest is still printed, followed by the errors, and the exit code is 1.

JSON output (-o json):
  {"topic": "job-status", "internal": false, "replication_factor": 3,
   "configs": {"retention.ms": "604800000"},
   "partitions": [{"partition": 0, "leader": 1, "replicas": [1, 2, 3],
                   "isr": [1, 2, 3], "start_offset": 0, "high_watermark": 42}],
   "groups": [{"group": "job-workers", "lag": 2,
               "partitions": [{"partition": 0, "committed": 40,
                               "high_watermark": 42, "lag": 2}]}]}
With --pending, each group and each of its partitions also has
"pending": the number of jobs it has not finished.
Broker ids are node ids; leader -1 means none. Offsets are -1 when they
could not be read, and the partition then has an "error" string.`,
		Example: `  jobctl topic describe
  jobctl topic describe other-topic
  jobctl topic describe --pending
  jobctl topic describe -o json | jq '.groups[] | {group, lag}'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic, err := opts.topic(args)
			if err != nil {
				return err
			}
			return opts.run(cmd, func(ctx context.Context, adm topicAdmin) error {
				d, err := adm.DescribeTopic(ctx, topic)
				if d == nil {
					return unknownTopicHint(err, topic)
				}
				if opts.Pending {
					v, verr := loadTopicView(ctx, opts.app, topic)
					if verr != nil {
						return errors.Join(err, fmt.Errorf("counting pending jobs: %w", verr))
					}
					addPending(d, v)
				}
				var perr error
				if opts.app.Printer().Format == output.JSON {
					perr = output.WriteJSON(opts.app.IO.Out, d)
				} else {
					perr = writeTopicDescription(opts.app.IO.Out, d)
				}
				return errors.Join(err, perr)
			})
		},
	}
	cmd.Flags().BoolVar(&opts.Pending, "pending", false, "also count each group's pending jobs per partition (reads the whole topic)")
	return cmd
}

// addPending fills in the pending jobs of every group of d from v.
func addPending(d *admin.TopicDescription, v *view.View) {
	positions := make(map[string]map[int]view.GroupPosition, len(d.Groups))
	for _, g := range d.Groups {
		m := make(map[int]view.GroupPosition, len(g.Partitions))
		for _, p := range g.Partitions {
			m[p.Partition] = view.GroupPosition{Committed: p.Committed, EndOffset: p.HighWatermark}
		}
		positions[g.Group] = m
	}
	pending := v.PendingAt(positions)
	for i := range d.Groups {
		g := &d.Groups[i]
		var total int64
		for j := range g.Partitions {
			n := int64(pending[g.Group][g.Partitions[j].Partition])
			g.Partitions[j].Pending = &n
			total += n
		}
		g.Pending = &total
	}
}

func writeTopicDescription(w io.Writer, d *admin.TopicDescription) error {
	configs := "(none set on the topic)"
	if len(d.Configs) > 0 {
		configs = formatConfigs(d.Configs)
	}
	fmt.Fprintf(w, "Topic:              %s\n", d.Topic)
	fmt.Fprintf(w, "Partitions:         %d\n", len(d.Partitions))
	fmt.Fprintf(w, "Replication factor: %d\n", d.ReplicationFactor)
	fmt.Fprintf(w, "Configs:            %s\n\n", configs)

	withErrors := false
	for _, p := range d.Partitions {
		withErrors = withErrors || p.Error != ""
	}
	header := []string{"PARTITION", "LEADER", "REPLICAS", "ISR", "START-OFFSET", "HIGH-WATERMARK"}
	if withErrors {
		header = append(header, "ERROR")
	}
	rows := make([][]string, 0, len(d.Partitions))
	for _, p := range d.Partitions {
		row := []string{strconv.Itoa(p.Partition), strconv.Itoa(p.Leader), joinInts(p.Replicas), joinInts(p.ISR),
			offsetText(p.StartOffset), offsetText(p.HighWatermark)}
		if withErrors {
			row = append(row, p.Error)
		}
		rows = append(rows, row)
	}
	if err := output.WriteTable(w, header, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Groups) == 0 {
		_, err := fmt.Fprintln(w, "No consumer group has committed offsets on this topic.")
		return err
	}
	rows = rows[:0]
	header = []string{"GROUP", "PARTITION", "COMMITTED", "HIGH-WATERMARK", "RECORD-LAG"}
	withPending := d.Groups[0].Pending != nil
	if withPending {
		header = append(header, "PENDING")
	}
	for _, g := range d.Groups {
		for _, p := range g.Partitions {
			lag := "-"
			if p.Lag != nil {
				lag = strconv.FormatInt(*p.Lag, 10)
			}
			row := []string{g.Group, strconv.Itoa(p.Partition), offsetText(p.Committed), offsetText(p.HighWatermark), lag}
			if withPending {
				pending := "-"
				if p.Pending != nil {
					pending = strconv.FormatInt(*p.Pending, 10)
				}
				row = append(row, pending)
			}
			rows = append(rows, row)
		}
	}
	return output.WriteTable(w, header, rows)
}

type topicListOptions struct {
	*topicOptions
	All bool
}

func newTopicListCmd(parent *topicOptions) *cobra.Command {
	opts := &topicListOptions{topicOptions: parent}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the cluster's topics",
		Long: `List the cluster's topics with their partition count and replication
factor, by name. Kafka's internal topics (__consumer_offsets and other
names starting with "__") are shown only with --all.

JSON output (-o json), an array:
  [{"topic": "job-status", "partitions": 4, "replication_factor": 3,
    "internal": false}]`,
		Example: `  jobctl topic list
  jobctl topic list --all
  jobctl topic list -o json | jq -r '.[].topic'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return opts.run(cmd, func(ctx context.Context, adm topicAdmin) error {
				topics, err := adm.ListTopics(ctx, opts.All)
				if topics == nil {
					return err // nothing could be read
				}
				var perr error
				switch {
				case opts.app.Printer().Format == output.JSON:
					perr = output.WriteJSON(opts.app.IO.Out, topics)
				case len(topics) == 0 && err == nil:
					hint := ""
					if !opts.All {
						hint = " (internal topics are shown with --all)"
					}
					_, perr = fmt.Fprintf(opts.app.IO.Out, "No topics%s.\n", hint)
				default:
					header := []string{"TOPIC", "PARTITIONS", "REPLICATION-FACTOR"}
					if opts.All {
						header = append(header, "INTERNAL")
					}
					rows := make([][]string, 0, len(topics))
					for _, t := range topics {
						row := []string{t.Topic, strconv.Itoa(t.Partitions), strconv.Itoa(t.ReplicationFactor)}
						if opts.All {
							row = append(row, strconv.FormatBool(t.Internal))
						}
						rows = append(rows, row)
					}
					perr = output.WriteTable(opts.app.IO.Out, header, rows)
				}
				return errors.Join(err, perr)
			})
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "include internal topics (__consumer_offsets, ...)")
	return cmd
}

func formatConfigs(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, " ")
}

func joinInts(in []int) string {
	parts := make([]string, len(in))
	for i, v := range in {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ",")
}

func offsetText(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

type topicDeleteOptions struct {
	*topicOptions
	Yes     bool
	WithAux bool
	// stdinTerminal says whether someone can answer the confirmation on
	// stdin; tests replace it.
	stdinTerminal func() bool
}

// topicDeleteResult is `topic delete -o json`.
type topicDeleteResult struct {
	Deleted []admin.TopicSize `json:"deleted"`
}

// auxTopics are the topics jobctl creates beside job topic t, by the
// packages that own them.
func auxTopics(t string) []string {
	return []string{ledger.DelayTopic(t), ledger.DLQTopic(t), ledger.ControlTopic(t), schedule.Topic(t), schedule.LeaderTopic(t)}
}

func newTopicDeleteCmd(parent *topicOptions) *cobra.Command {
	opts := &topicDeleteOptions{topicOptions: parent, stdinTerminal: func() bool {
		f, ok := parent.app.IO.In.(*os.File)
		return ok && term.IsTerminal(int(f.Fd()))
	}}
	cmd := &cobra.Command{
		Use:   "delete TOPIC",
		Short: "Delete a topic, and with --with-aux its auxiliary topics",
		Long: `Delete TOPIC and every record in it. Unlike the other topic commands the
topic must be named: there is no default for a deletion.

On a terminal it first asks "Delete topic X with N partitions and M
records? [y/N]" and deletes only on "y" or "yes" (anything else exits 1
with nothing deleted). Where nobody can answer (stdin is not a terminal:
scripts, CI) it refuses with exit 2 unless --yes is given.

--with-aux also deletes the auxiliary topics jobctl keeps beside a job
topic, those of them that exist: TOPIC.delay (delayed retries and jobs),
TOPIC.dlq (dead letters), TOPIC.control (cancellations, paused groups),
TOPIC.schedules and TOPIC.scheduler (schedules and their leader). Without
it they are kept, and listed. The command names every topic it deletes,
and returns once no broker lists them any more.

JSON output (-o json):
  {"deleted": [{"topic": "job-status", "partitions": 4, "records": 1200}]}`,
		Example: `  jobctl topic delete old-jobs
  jobctl topic delete old-jobs --with-aux --yes
  jobctl topic delete old-jobs --yes -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("topic delete needs the topic's name (there is no default for a deletion), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			topic, err := opts.topic(args)
			if err != nil {
				return err
			}
			return opts.run(cmd, func(ctx context.Context, adm topicAdmin) error {
				return opts.delete(ctx, adm, topic)
			})
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "delete without asking (required when stdin is not a terminal)")
	cmd.Flags().BoolVar(&opts.WithAux, "with-aux", false, "also delete TOPIC.delay, .dlq, .control, .schedules and .scheduler (those that exist)")
	return cmd
}

func (o *topicDeleteOptions) delete(ctx context.Context, adm topicAdmin, topic string) error {
	if admin.IsInternal(topic, false) {
		// Kafka's own bookkeeping (committed offsets, transactions): no
		// jobctl command has a reason to delete it.
		return usageErrorf("refusing to delete %q: names starting with \"__\" are Kafka's internal topics", topic)
	}
	target, err := adm.Size(ctx, topic)
	if err != nil {
		return err
	}
	// One listing finds which auxiliary topics exist, to delete or to
	// mention as kept.
	all, err := adm.ListTopics(ctx, false)
	if err != nil && all == nil {
		return fmt.Errorf("looking for the auxiliary topics of %q: %w", topic, err)
	}
	exists := make(map[string]bool, len(all))
	for _, t := range all {
		exists[t.Topic] = true
	}
	var aux []string
	for _, t := range auxTopics(topic) {
		if exists[t] {
			aux = append(aux, t)
		}
	}
	plan := []admin.TopicSize{target}
	if o.WithAux {
		for _, t := range aux {
			s, err := adm.Size(ctx, t)
			if errors.Is(err, admin.ErrUnknownTopic) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			plan = append(plan, s)
		}
	}
	if !o.Yes {
		if !o.stdinTerminal() {
			return usageErrorf("refusing to delete topic %q without confirmation: stdin is not a terminal; pass --yes to delete it", topic)
		}
		ok, err := o.confirm(plan)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(o.app.IO.ErrOut, "Not confirmed; nothing deleted.")
			return &silentError{code: ExitFailure}
		}
	}
	names := make([]string, len(plan))
	for i, s := range plan {
		names[i] = s.Topic
	}
	if err := adm.DeleteTopics(ctx, names...); err != nil {
		return err
	}
	o.app.Logger.Debug("topic delete", "topics", names)
	if o.app.Printer().Format == output.JSON {
		return output.WriteJSON(o.app.IO.Out, topicDeleteResult{Deleted: plan})
	}
	for _, s := range plan {
		fmt.Fprintf(o.app.IO.Out, "Deleted topic %q (%s).\n", s.Topic, sizeText(s))
	}
	if !o.WithAux && len(aux) > 0 {
		fmt.Fprintf(o.app.IO.Out, "Kept its auxiliary topics %s (delete them with --with-aux).\n", strings.Join(aux, ", "))
	}
	return nil
}

// confirm asks on the terminal whether to delete plan; only "y" or "yes"
// is a yes.
func (o *topicDeleteOptions) confirm(plan []admin.TopicSize) (bool, error) {
	q := fmt.Sprintf("Delete topic %s with %d partitions and %d records", plan[0].Topic, plan[0].Partitions, plan[0].Records)
	if len(plan) > 1 {
		parts := make([]string, 0, len(plan)-1)
		for _, s := range plan[1:] {
			parts = append(parts, fmt.Sprintf("%s (%s)", s.Topic, sizeText(s)))
		}
		q += ", and its auxiliary topics " + strings.Join(parts, ", ")
	}
	fmt.Fprint(o.app.IO.ErrOut, q+"? [y/N] ")
	line, err := bufio.NewReader(o.app.IO.In).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(o.app.IO.ErrOut)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, fmt.Errorf("reading the confirmation: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

func sizeText(s admin.TopicSize) string {
	return fmt.Sprintf("%d partitions, %d records", s.Partitions, s.Records)
}
