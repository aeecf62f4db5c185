// Package metrics holds jobctl's Prometheus collectors. Each process builds
// one Metrics on its own registry and hands it to the parts that count.
// A nil *Metrics is valid and counts nothing, so library users and tests
// need not set it up.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the collectors every jobctl component may update.
type Metrics struct {
	Registry *prometheus.Registry

	JobsProduced    *prometheus.CounterVec   // result: ok|failed
	JobsProcessed   *prometheus.CounterVec   // status: DONE|FAILED
	JobsReexecuted  prometheus.Counter       // jobs seen again after a restart or rebalance
	HandlerDuration *prometheus.HistogramVec // status
	JobsByStatus    *prometheus.GaugeVec     // status; from the serve view
	ConsumerLag     *prometheus.GaugeVec     // group, partition
	PendingJobs     *prometheus.GaugeVec     // group, partition; from the serve view
	InvalidRecords  prometheus.Counter       // records on the topic that are not jobs
}

// New registers jobctl's collectors, plus Go and process collectors, on a
// fresh registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		JobsProduced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobctl_jobs_produced_total", Help: "NEW job events written, by result.",
		}, []string{"result"}),
		JobsProcessed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobctl_jobs_processed_total", Help: "Jobs processed by this process's workers, by final status.",
		}, []string{"status"}),
		JobsReexecuted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jobctl_jobs_reexecuted_total", Help: "Jobs processed again because their offset was not committed before a crash or rebalance.",
		}),
		HandlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "jobctl_handler_duration_seconds", Help: "Time the handler took per job, by result status.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"status"}),
		JobsByStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobctl_jobs", Help: "Jobs in the view, by current status.",
		}, []string{"status"}),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobctl_consumer_lag", Help: "Record lag: records (of every kind, other groups' events too) not yet committed by a consumer group, per partition.",
		}, []string{"group", "partition"}),
		PendingJobs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "jobctl_pending_jobs", Help: "Jobs a consumer group has not finished (NEW, SCHEDULED, RUNNING, FAILED waiting for a retry), per partition.",
		}, []string{"group", "partition"}),
		InvalidRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jobctl_invalid_records_total", Help: "Records on the topic that are not job events (skipped).",
		}),
	}
	reg.MustRegister(m.JobsProduced, m.JobsProcessed, m.JobsReexecuted, m.HandlerDuration,
		m.JobsByStatus, m.ConsumerLag, m.PendingJobs, m.InvalidRecords,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
