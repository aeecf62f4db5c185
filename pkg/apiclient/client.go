// Package apiclient is the HTTP client of a running 'jobctl serve': the
// CLI's read commands ask it instead of replaying the topic themselves.
// It returns the same types the server encodes (view.Job,
// deadletter.Entry, schedule.Listed), so a command prints the same table
// and JSON whichever way it got them.
package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jobctl/jobctl/pkg/deadletter"
	"github.com/jobctl/jobctl/pkg/schedule"
	"github.com/jobctl/jobctl/pkg/view"
)

// MaxPage is the largest page GET /jobs and GET /dlq answer (the
// server's MaxLimit); longer listings are read page by page.
const MaxPage = 1000

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Options configure a Client.
type Options struct {
	// URL is the server's base URL, http(s)://host:port[/prefix].
	URL string
	// Token is sent as 'Authorization: Bearer <Token>' when set.
	Token string
	// HTTPClient defaults to one with a 30 s timeout per request.
	HTTPClient *http.Client
	// OnLoading is called while the server answers 503 because its job
	// view is still reading the topic (the request is retried after the
	// server's Retry-After); read and total are records. May be nil.
	OnLoading func(read, total int64)
}

// Client talks to one server.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	onLoading func(read, total int64)
}

// New checks opts.URL and returns a client for it.
func New(opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(opts.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http://HOST:PORT or https://HOST:PORT", opts.URL)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: u, token: opts.Token, http: hc, onLoading: opts.OnLoading}, nil
}

// URL is the server's base URL, for messages.
func (c *Client) URL() string { return c.base.String() }

// StatusError is an answer other than 2xx.
type StatusError struct {
	Method, URL string
	Code        int
	// Message is the server's {"error": ...} text (or the start of the
	// body when it was not JSON).
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Code, http.StatusText(e.Code), e.Message)
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// Health is the body of GET /healthz.
type Health struct {
	Status  string `json:"status"`
	Topic   string `json:"topic"`
	Version string `json:"version"`
}

// Health asks GET /healthz (never retried: it is how callers find out
// whether a server is there at all).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	_, err := c.getOnce(ctx, "/healthz", nil, &h)
	return h, err
}

// CheckReadAccess asks for one job to learn whether the server lets
// this client read (a server with api.token_reads wants the token): nil,
// or the server's 401/403 as a *StatusError. A server still loading
// passed the token check already, so that counts as access.
func (c *Client) CheckReadAccess(ctx context.Context) error {
	var discard json.RawMessage
	_, err := c.getOnce(ctx, "/jobs", url.Values{"limit": {"1"}}, &discard)
	var le *loadingError
	if errors.As(err, &le) {
		return nil
	}
	var se *StatusError
	if errors.As(err, &se) && se.Code != http.StatusUnauthorized && se.Code != http.StatusForbidden {
		return nil // some other answer: access itself is not the problem
	}
	return err
}

// ListJobs answers q like view.View.List: at most q.Limit jobs (0 = all)
// and whether more match. Pages longer than MaxPage are fetched one after
// the other, each starting after the last id of the one before.
func (c *Client) ListJobs(ctx context.Context, q view.Query) ([]view.Job, bool, error) {
	params := url.Values{}
	if q.Status != "" {
		params.Set("status", string(q.Status))
	}
	if q.Type != "" {
		params.Set("type", q.Type)
	}
	if q.Group != "" {
		params.Set("group", q.Group)
	}
	if !q.Since.IsZero() {
		params.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		params.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Desc {
		params.Set("order", "desc")
	}
	after := q.After
	var all []view.Job
	for {
		page := MaxPage
		if q.Limit > 0 {
			page = min(q.Limit-len(all), MaxPage)
		}
		params.Set("limit", strconv.Itoa(page))
		if after != "" {
			params.Set("after", after)
		}
		var jobs []view.Job
		hdr, err := c.get(ctx, "/jobs", params, &jobs)
		if err != nil {
			return nil, false, err
		}
		all = append(all, jobs...)
		more := hasNextLink(hdr)
		if !more || len(jobs) == 0 {
			return all, false, nil
		}
		if q.Limit > 0 && len(all) >= q.Limit {
			return all, true, nil
		}
		after = jobs[len(jobs)-1].ID.String()
	}
}

// hasNextLink reports whether a GET /jobs answer names a next page.
func hasNextLink(h http.Header) bool {
	for _, l := range h.Values("Link") {
		if strings.Contains(l, `rel="next"`) {
			return true
		}
	}
	return false
}

// GetJob answers GET /jobs/{id}; ok is false when the server does not
// know the job.
func (c *Client) GetJob(ctx context.Context, id string) (j view.Job, ok bool, err error) {
	_, err = c.get(ctx, "/jobs/"+url.PathEscape(id), nil, &j)
	if IsNotFound(err) {
		return view.Job{}, false, nil
	}
	return j, err == nil, err
}

// deadLetterList is the body of GET /dlq.
type deadLetterList struct {
	DeadLetters []deadletter.Entry `json:"dead_letters"`
	More        bool               `json:"more"`
}

// ListDeadLetters answers GET /dlq with f; f.Limit must be 1 to MaxPage
// (the server has no paging for dead letters).
func (c *Client) ListDeadLetters(ctx context.Context, f deadletter.Filter) ([]deadletter.Entry, bool, error) {
	if f.Limit < 1 || f.Limit > MaxPage {
		return nil, false, fmt.Errorf("listing dead letters from %s: limit %d: want 1 to %d", c.URL(), f.Limit, MaxPage)
	}
	params := url.Values{"limit": {strconv.Itoa(f.Limit)}}
	for k, v := range map[string]string{"type": f.Type, "error": f.ErrorContains, "group": f.Group, "kind": string(f.Kind)} {
		if v != "" {
			params.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		params.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		params.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	var body deadLetterList
	if _, err := c.get(ctx, "/dlq", params, &body); err != nil {
		return nil, false, err
	}
	if body.DeadLetters == nil {
		body.DeadLetters = []deadletter.Entry{}
	}
	return body.DeadLetters, body.More, nil
}

// ListSchedules answers GET /schedules: every schedule by name with its
// next run.
func (c *Client) ListSchedules(ctx context.Context) ([]schedule.Listed, error) {
	var body struct {
		Schedules []schedule.Listed `json:"schedules"`
	}
	if _, err := c.get(ctx, "/schedules", nil, &body); err != nil {
		return nil, err
	}
	if body.Schedules == nil {
		body.Schedules = []schedule.Listed{}
	}
	return body.Schedules, nil
}

// GetSchedule answers GET /schedules/{name}; an unknown name is an error
// wrapping schedule.ErrNotFound, as schedule.Store.Get returns.
func (c *Client) GetSchedule(ctx context.Context, name string) (schedule.Listed, error) {
	var l schedule.Listed
	_, err := c.get(ctx, "/schedules/"+url.PathEscape(name), nil, &l)
	if IsNotFound(err) {
		return l, fmt.Errorf("schedule %q: %w", name, schedule.ErrNotFound)
	}
	return l, err
}

// loadingBody is a 503 answer of a server whose view is still loading.
type loadingBody struct {
	Error    string        `json:"error"`
	Loading  bool          `json:"loading"`
	Progress view.Progress `json:"progress"`
}

// get is getOnce, retried while the server says its job view is still
// loading: the answer it would give now is not the topic's.
func (c *Client) get(ctx context.Context, path string, params url.Values, dst any) (http.Header, error) {
	for {
		hdr, err := c.getOnce(ctx, path, params, dst)
		var le *loadingError
		if !errors.As(err, &le) {
			return hdr, err
		}
		if c.onLoading != nil {
			c.onLoading(le.read, le.total)
		}
		t := time.NewTimer(le.retryAfter)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("waiting for the server at %s to finish loading (%s): %w", c.URL(), le.msg, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// loadingError is a 503 with "loading": true.
type loadingError struct {
	msg         string
	read, total int64
	retryAfter  time.Duration
}

func (e *loadingError) Error() string { return e.msg }

func (c *Client) getOnce(ctx context.Context, path string, params url.Values, dst any) (http.Header, error) {
	// path is already escaped (url.PathEscape of ids and names).
	target := strings.TrimRight(c.base.String(), "/") + path
	if len(params) > 0 {
		target += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", target, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the jobctl server at %s: %w", c.URL(), unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		var lb loadingBody
		_ = json.Unmarshal(b, &lb)
		if resp.StatusCode == http.StatusServiceUnavailable && lb.Loading {
			le := &loadingError{msg: lb.Error, retryAfter: time.Second}
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				le.retryAfter = time.Duration(s) * time.Second
			}
			for _, p := range lb.Progress.Partitions {
				le.read += p.NextOffset
				le.total += max(p.EndOffsetAtStart, p.NextOffset)
			}
			return nil, le
		}
		msg := lb.Error
		if msg == "" {
			msg = strings.TrimSpace(string(b))
			if len(msg) > 200 {
				msg = msg[:200] + "…"
			}
		}
		return nil, &StatusError{Method: req.Method, URL: target, Code: resp.StatusCode, Message: msg}
	}
	if err := json.NewDecoder(resp.Body).Decode(dst); err != nil {
		return nil, fmt.Errorf("reading the answer of %s: %w", target, err)
	}
	return resp.Header, nil
}

// unwrapURLError drops net/http's `Get "URL":` prefix: the caller names
// the server already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Group is one consumer group as GET /groups describes it.
type Group struct {
	Group         string           `json:"group"`
	State         string           `json:"state"`
	Protocol      string           `json:"protocol"`
	Paused        bool             `json:"paused"`
	Members       []GroupMember    `json:"members"`
	Pending       map[string]int64 `json:"pending"`
	PendingTotal  int64            `json:"pending_total"`
	JobsPerSecond float64          `json:"jobs_per_second"`
	Error         string           `json:"error,omitempty"`
}

// GroupMember is one member of a group and its partitions of the topic.
type GroupMember struct {
	MemberID   string `json:"member_id"`
	InstanceID string `json:"instance_id"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	Partitions []int  `json:"partitions"`
}

// ListGroups answers GET /groups.
func (c *Client) ListGroups(ctx context.Context) ([]Group, error) {
	var body struct {
		Groups []Group `json:"groups"`
	}
	if _, err := c.get(ctx, "/groups", nil, &body); err != nil {
		return nil, err
	}
	if body.Groups == nil {
		body.Groups = []Group{}
	}
	return body.Groups, nil
}

// GetGroup answers GET /groups/{group}; ok is false when the server
// knows no such group on its topic.
func (c *Client) GetGroup(ctx context.Context, name string) (g Group, ok bool, err error) {
	_, err = c.get(ctx, "/groups/"+url.PathEscape(name), nil, &g)
	if IsNotFound(err) {
		return Group{}, false, nil
	}
	return g, err == nil, err
}

// InProcess is an HTTP client whose requests h serves in this process:
// a command without a server runs the server's own handler over data it
// read itself, so both ways give the same answer by construction.
func InProcess(h http.Handler) *http.Client {
	return &http.Client{Transport: handlerTransport{h}}
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// What a server sees of a request that came over the network.
	in := req.Clone(req.Context())
	in.Host = req.URL.Host
	in.RemoteAddr = "127.0.0.1:1"
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}
