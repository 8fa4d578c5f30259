// Command dockerdrivers feeds container output through Docker's own log drivers
// (github.com/docker/docker/daemon/logger/...) exactly as dockerd does: the driver is created
// by the registered factory with the options dockerd validates and passes (logger.Info), wrapped
// in the ring buffer for mode=non-blocking, and fed by dockerd's logger.Copier from two OS pipes
// (the container's stdout and stderr). At the end the pipes are closed, the copier drained and
// the driver closed, in dockerd's order.
//
// It reads a JSON plan (a list of variants) and, for each, writes the lines it generates,
// paced or in a burst, recording for every line its sequence number, stream, send time and
// content in a JSONL file, so that a test can check what arrived against what was sent.
//
//	dockerdrivers -plan plan.json -sent sent.jsonl [-linger 10s | -wait-stdin]
//
// journald: go-systemd's journal package sends to its journalSocket variable (by default
// /run/systemd/journal/socket), which the package documents as overridable at build time. The
// test build sets it to the relative path "journal.socket"; for journald variants this program
// links that name, in a private directory it changes into, to the variant's socket (a namespaced
// systemd-journald started by the test).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/daemon/logger"
	_ "github.com/docker/docker/daemon/logger/awslogs"
	_ "github.com/docker/docker/daemon/logger/fluentd"
	_ "github.com/docker/docker/daemon/logger/gelf"
	_ "github.com/docker/docker/daemon/logger/journald"
	_ "github.com/docker/docker/daemon/logger/splunk"
	_ "github.com/docker/docker/daemon/logger/syslog"
	units "github.com/docker/go-units"
)

// Container is what dockerd knows of the container and passes to the driver (logger.Info).
type Container struct {
	ID         string            `json:"id"`    // 64 hex digits
	Name       string            `json:"name"`  // with dockerd's leading "/"
	Image      string            `json:"image"` // as the user named it (Config.Image)
	ImageID    string            `json:"image_id"`
	Entrypoint string            `json:"entrypoint"`
	Args       []string          `json:"args"`
	Env        []string          `json:"env"`
	Labels     map[string]string `json:"labels"`
}

// Variant is one run of one driver with one set of options.
type Variant struct {
	Name          string            `json:"name"`
	Driver        string            `json:"driver"`
	Config        map[string]string `json:"config"` // the --log-opt values
	Container     Container         `json:"container"`
	Marker        string            `json:"marker"`         // a token in every line (and every 20 bytes of long lines)
	Lines         int               `json:"lines"`          // lines to send
	Rate          float64           `json:"rate"`           // lines per second; 0 = burst
	LongEvery     int               `json:"long_every"`     // every n-th line is long (0: none)
	LongSizes     []int             `json:"long_sizes"`     // sizes of the long lines, cycled
	StderrEvery   int               `json:"stderr_every"`   // every n-th line goes to stderr (0: none)
	TZ            string            `json:"tz"`             // time zone of the "daemon" (time.Local)
	JournalSocket string            `json:"journal_socket"` // journald variants: where to send
	Env           map[string]string `json:"env"`            // dockerd's environment for this driver (AWS_*, SPLUNK_*)
}

// Sent is one line written to the container's stdout or stderr.
type Sent struct {
	Variant string `json:"variant"`
	Seq     int    `json:"seq"`
	Stream  string `json:"stream"`
	TimeNs  int64  `json:"t"`     // when it was written to the pipe
	StampNs int64  `json:"stamp"` // the time logger.Copier gave it (what the driver sends)
	Line    string `json:"line"`
}

// Result summarises one variant.
type Result struct {
	Variant   string  `json:"variant"`
	Sent      int     `json:"sent"`
	Bytes     int64   `json:"bytes"`
	Seconds   float64 `json:"seconds"`
	LogErrors int64   `json:"log_errors"` // Log() calls the driver refused
	Error     string  `json:"error,omitempty"`
	CloseSecs float64 `json:"close_seconds"`
}

// counting wraps the driver the copier writes to, counting refused messages and noting the
// time the copier stamped on the first piece of each line. It keeps the driver's buffer size
// (the copier splits lines at it: 16 KiB unless the driver says otherwise).
type counting struct {
	logger.Logger
	errors atomic.Int64
	mu     sync.Mutex
	stamps map[int]int64
}

var seqRE = regexp.MustCompile(`seq=(\d{6})`)

func (c *counting) Log(m *logger.Message) error {
	if g := seqRE.FindSubmatch(m.Line[:min(len(m.Line), 100)]); g != nil {
		seq, _ := strconv.Atoi(string(g[1]))
		c.mu.Lock()
		if _, seen := c.stamps[seq]; !seen {
			c.stamps[seq] = m.Timestamp.UnixNano()
		}
		c.mu.Unlock()
	}
	err := c.Logger.Log(m)
	if err != nil {
		if c.errors.Add(1) <= 5 {
			fmt.Fprintf(os.Stderr, "dockerdrivers: %s: Log: %v\n", c.Name(), err)
		}
	}
	return err
}

func (c *counting) BufSize() int {
	if s, ok := c.Logger.(logger.SizedLogger); ok {
		return s.BufSize()
	}
	return 0
}

// line is the content of line seq: a mix of plain text, JSON and logfmt, none with a time of
// its own (the event time must come from the driver), and long lines made of marker tokens.
func line(v *Variant, seq int) string {
	if v.LongEvery > 0 && seq%v.LongEvery == v.LongEvery-1 && len(v.LongSizes) > 0 {
		size := v.LongSizes[(seq/v.LongEvery)%len(v.LongSizes)]
		var b strings.Builder
		fmt.Fprintf(&b, "%s seq=%06d LONG", v.Marker, seq)
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, " %s:%06d:%05d", v.Marker, seq, i)
		}
		return b.String()[:size]
	}
	switch seq % 4 {
	case 0:
		return fmt.Sprintf("INFO %s seq=%06d GET /api/cart/%d 200 %dms", v.Marker, seq, seq%97, seq%250)
	case 1:
		return fmt.Sprintf(`{"level":"warn","msg":"%s seq=%06d cache miss","key":"cart:%d"}`, v.Marker, seq, seq%97)
	case 2:
		return fmt.Sprintf(`level=error msg="%s seq=%06d payment failed" order=%d`, v.Marker, seq, seq)
	default:
		return fmt.Sprintf("%s seq=%06d worker %d finished job in %d.%03d s", v.Marker, seq, seq%8, seq%5, seq%1000)
	}
}

func info(v *Variant) logger.Info {
	c := v.Container
	return logger.Info{
		Config:              v.Config,
		ContainerID:         c.ID,
		ContainerName:       c.Name,
		ContainerEntrypoint: c.Entrypoint,
		ContainerArgs:       c.Args,
		ContainerImageID:    c.ImageID,
		ContainerImageName:  c.Image,
		ContainerCreated:    time.Now().Add(-time.Minute).UTC(),
		ContainerEnv:        c.Env,
		ContainerLabels:     c.Labels,
		DaemonName:          "docker",
	}
}

// startLogger is dockerd's container.StartLogger: validate, create, wrap non-blocking.
func startLogger(v *Variant) (logger.Logger, error) {
	if err := logger.ValidateLogOpts(v.Driver, v.Config); err != nil {
		return nil, err
	}
	create, err := logger.GetLogDriver(v.Driver)
	if err != nil {
		return nil, err
	}
	inf := info(v)
	l, err := create(inf)
	if err != nil {
		return nil, err
	}
	if v.Config["mode"] == "non-blocking" {
		size := int64(-1)
		if s, ok := v.Config["max-buffer-size"]; ok {
			if size, err = units.RAMInBytes(s); err != nil {
				return nil, err
			}
		}
		l = logger.NewRingLogger(l, inf, size)
	}
	return l, nil
}

func setup(v *Variant, workdir string) error {
	for k, val := range v.Env {
		os.Setenv(k, val)
	}
	time.Local = time.UTC
	if v.TZ != "" {
		loc, err := time.LoadLocation(v.TZ)
		if err != nil {
			return err
		}
		time.Local = loc
	}
	if v.Driver == "journald" {
		if v.JournalSocket == "" {
			return fmt.Errorf("journald variant without journal_socket")
		}
		link := filepath.Join(workdir, "journal.socket")
		os.Remove(link)
		if err := os.Symlink(v.JournalSocket, link); err != nil {
			return err
		}
	}
	return nil
}

func run(v *Variant, workdir string, sent *json.Encoder) Result {
	res := Result{Variant: v.Name}
	defer func() {
		for k := range v.Env {
			os.Unsetenv(k)
		}
	}()
	if err := setup(v, workdir); err != nil {
		res.Error = err.Error()
		return res
	}
	l, err := startLogger(v)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	driver := &counting{Logger: l, stamps: make(map[int]int64, v.Lines)}
	lines := make([]Sent, 0, v.Lines)
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	copier := logger.NewCopier(map[string]io.Reader{"stdout": outR, "stderr": errR}, driver)
	copier.Run()

	start := time.Now()
	for seq := 0; seq < v.Lines; seq++ {
		if v.Rate > 0 {
			due := start.Add(time.Duration(float64(seq) / v.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
		}
		text := line(v, seq)
		stream, w := "stdout", outW
		if v.StderrEvery > 0 && seq%v.StderrEvery == v.StderrEvery-1 {
			stream, w = "stderr", errW
		}
		t := time.Now()
		if _, err := w.Write([]byte(text + "\n")); err != nil {
			res.Error = err.Error()
			break
		}
		res.Sent++
		res.Bytes += int64(len(text)) + 1
		lines = append(lines, Sent{Variant: v.Name, Seq: seq, Stream: stream, TimeNs: t.UnixNano(), Line: text})
	}
	res.Seconds = time.Since(start).Seconds()
	// The container exits: its stdio closes, dockerd waits for the copier (at most 10 s,
	// loggerCloseTimeout) and closes the driver.
	outW.Close()
	errW.Close()
	closing := time.Now()
	done := make(chan struct{})
	go func() { copier.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Fprintf(os.Stderr, "dockerdrivers: %s: copier did not finish in 10 s (dockerd: logs may be truncated)\n", v.Name)
		copier.Close()
	}
	if err := l.Close(); err != nil && res.Error == "" {
		res.Error = "close: " + err.Error()
	}
	outR.Close()
	errR.Close()
	res.CloseSecs = time.Since(closing).Seconds()
	res.LogErrors = driver.errors.Load()
	for _, x := range lines {
		x.StampNs = driver.stamps[x.Seq]
		sent.Encode(x)
	}
	return res
}

func main() {
	planPath := flag.String("plan", "", "JSON list of variants")
	sentPath := flag.String("sent", "sent.jsonl", "JSONL record of every line written")
	linger := flag.Duration("linger", 0, "stay alive this long after the last variant (drivers that do not wait for their last request on close)")
	waitStdin := flag.Bool("wait-stdin", false, "after the last variant, stay alive until standard input closes")
	flag.Parse()

	data, err := os.ReadFile(*planPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var plan []Variant
	if err := json.Unmarshal(data, &plan); err != nil {
		fmt.Fprintln(os.Stderr, "plan:", err)
		os.Exit(2)
	}
	workdir, err := os.MkdirTemp("", "dockerdrivers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer os.RemoveAll(workdir)
	f, err := os.Create(*sentPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := os.Chdir(workdir); err != nil { // journal.socket resolves here
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(buf)
	out := json.NewEncoder(os.Stdout)
	failed := false
	for i := range plan {
		res := run(&plan[i], workdir, enc)
		failed = failed || res.Error != ""
		buf.Flush()
		out.Encode(res)
	}
	f.Close()
	fmt.Println(`{"done":true}`)
	if *waitStdin {
		io.Copy(io.Discard, os.Stdin)
	}
	time.Sleep(*linger)
	if failed {
		os.Exit(1)
	}
}
