package cmd

import (
	"fmt"

	"github.com/jobctl/jobctl/pkg/embedded"
	"github.com/spf13/cobra"
)

type brokerOptions struct {
	Addr    string
	DataDir string
}

func newBrokerCmd(app *App) *cobra.Command {
	opts := &brokerOptions{}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run an embedded Kafka-protocol broker for demos and tests",
		Long: `Run an in-process Kafka-protocol broker (franz-go's kfake) until Ctrl-C.

It needs nothing installed and speaks enough of the Kafka protocol for every
jobctl command, so it is the quickest way to try jobctl. It is NOT a
production broker: one process, no replication, best-effort durability. Use
Apache Kafka for anything real (docker-compose.yml, or scripts/kafka.sh).

With --data-dir, topics, records and committed offsets survive restarts.`,
		Example: `  jobctl broker --data-dir ./data
  jobctl broker --addr 127.0.0.1:19092`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{skipConfigAnnotation: ""},
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := embedded.Start(embedded.Options{Addr: opts.Addr, DataDir: opts.DataDir, Logger: app.Logger})
			if err != nil {
				return err
			}
			defer b.Close()
			app.Logger.Info("embedded broker listening", "addr", b.Addr(), "data_dir", opts.DataDir)
			fmt.Fprintf(app.IO.Out, "embedded broker listening on %s (Ctrl-C to stop)\n", b.Addr())
			<-cmd.Context().Done()
			app.Logger.Info("embedded broker stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Addr, "addr", "127.0.0.1:9092", "address to listen on")
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", "", "directory that keeps the broker's data across restarts (default: memory only)")
	return cmd
}
