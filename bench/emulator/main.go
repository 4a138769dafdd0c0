//go:build unix

// Command emulator measures how many requests a second the TD API emulator
// (internal/emulator, what `tdctl dev-server` and every test run) answers,
// beside a bare net/http server answering the same bytes, in the same run:
//
//	go run ./bench/emulator [-c 32] [-d 5s] [-rounds 2] [-gzip=true] [-summary FILE] [-cpuprofile FILE]
//
// The emulator is served by net/http on 127.0.0.1:0; a query job is issued
// through the td client and waited for, so the calls hit a real finished
// job. The reference is a bare net/http server on another port whose handler
// looks the path up in a map and writes the bytes (and Content-Type /
// Content-Encoding) the emulator answered for that route, fetched once
// before measuring: same body, same headers, no routing, auth, locking, JSON
// encoding or compression. The gap between the two is therefore all the
// emulator's own work per request.
//
// The load generator is in this process: -c goroutines, each a keep-alive
// client sending `Authorization: TD1 <key>` and, like the td client,
// `Accept-Encoding: gzip` (-gzip=false asks for plain JSON), one request at a
// time for -d. Routes: GET /v3/job/status/:id (what a waiter polls) and GET
// /v3/job/show/:id. Each route runs -rounds rounds on each server,
// alternating which server goes first, after a 0.5 s warm-up of each; every
// answer must be a 200 of the expected length or it counts as an error. The
// emulator records every request it sees (Server.Requests) with no way to
// turn that off, so each round gets a fresh emulator (and a fresh job) and
// memory stays bounded by one round; peak RSS is printed at the end.
//
// There is no target in issue 7: the figure is informational (OK unless a
// request failed). With -summary FILE the requests/s of both routes are
// appended to FILE (bench/internal/summary).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/tdctl/tdctl/bench/internal/summary"
	"github.com/tdctl/tdctl/internal/emulator"
	"github.com/tdctl/tdctl/td"
)

const (
	apiKey = "bench/0123456789abcdef"
	warmup = 500 * time.Millisecond
)

func main() {
	conc := flag.Int("c", 32, "concurrent keep-alive clients")
	dur := flag.Duration("d", 5*time.Second, "duration of one round on one server")
	rounds := flag.Int("rounds", 2, "rounds per route and server (alternating)")
	gz := flag.Bool("gzip", true, "send Accept-Encoding: gzip, as the td client does")
	sumPath := flag.String("summary", "", "append the figures to this JSON-lines file (bench/internal/summary)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (both servers and the load) to this file")
	flag.Parse()
	if *conc < 1 || *dur <= 0 || *rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench/emulator: -c, -d and -rounds must be positive")
		os.Exit(1)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/emulator:", err)
			os.Exit(1)
		}
		defer f.Close()
	}
	err := run(*conc, *dur, *rounds, *gz, *sumPath)
	pprof.StopCPUProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/emulator:", err)
		os.Exit(1)
	}
}

// route is one API call measured.
type route struct {
	name  string // "job/status"
	path  string // "/v3/job/status/" (the job id follows)
	title string // summary figure name
}

var routes = []route{
	{"job/status", "/v3/job/status/", "emulator job/status requests/s"},
	{"job/show", "/v3/job/show/", "emulator job/show requests/s"},
}

// answer is what a server sent for a route.
type answer struct {
	ctype, cenc string
	body        []byte
}

// target is one server under load.
type target struct {
	url  string // full request URL
	size int    // expected body length
	stop func()
}

// tally is the outcome of the rounds of one server on one route.
type tally struct {
	n, errs  int64
	elapsed  time.Duration
	lat      []time.Duration
	rps      []float64 // per round
	firstErr error
}

func run(conc int, dur time.Duration, rounds int, gz bool, sumPath string) error {
	ctx := context.Background()
	client := newLoadClient(conc)
	defer client.CloseIdleConnections()

	// The bare reference, serving the emulator's bytes (filled in below).
	bareBodies := map[string]answer{}
	var bareMu sync.RWMutex
	bare, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bareMu.RLock()
		a, ok := bareBodies[r.URL.Path]
		bareMu.RUnlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		if a.cenc != "" {
			h.Set("Content-Encoding", a.cenc)
		}
		h.Set("Content-Length", fmt.Sprint(len(a.body)))
		_, _ = w.Write(a.body)
	}))
	if err != nil {
		return err
	}
	defer bare.close()

	fmt.Printf("%d keep-alive clients, %d × %s rounds per route and server (alternating), gzip=%v, GOMAXPROCS=%d%s\n",
		conc, rounds, dur, gz, runtime.GOMAXPROCS(0), loadavg())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\tserver\tbody\trequests/s\tper round\tp50\tp99\terrors\tvs bare\t")
	var figs []summary.Figure
	for _, rt := range routes {
		// newEmu starts a fresh emulator with a finished job and returns the
		// target for this route; the first one also gives the bare body.
		newEmu := func() (target, answer, error) {
			emu, id, err := startEmulator(ctx)
			if err != nil {
				return target{}, answer{}, err
			}
			u := emu.base + rt.path + id
			a, err := fetch(client, u, gz)
			if err != nil {
				emu.close()
				return target{}, answer{}, err
			}
			return target{url: u, size: len(a.body), stop: emu.close}, a, nil
		}
		emuT, a, err := newEmu()
		if err != nil {
			return fmt.Errorf("%s: %w", rt.name, err)
		}
		barePath := rt.path + "1"
		bareMu.Lock()
		bareBodies[barePath] = a
		bareMu.Unlock()
		bareT := target{url: bare.base + barePath, size: len(a.body), stop: func() {}}
		if got, err := fetch(client, bareT.url, gz); err != nil || len(got.body) != len(a.body) {
			return fmt.Errorf("%s: the bare server does not answer the emulator's body (%v)", rt.name, err)
		}

		var emuTally, bareTally tally
		load(client, emuT, conc, warmup, gz, &tally{})
		load(client, bareT, conc, warmup, gz, &tally{})
		for r := range rounds {
			if r > 0 {
				emuT.stop()
				runtime.GC()
				if emuT, _, err = newEmu(); err != nil {
					return fmt.Errorf("%s: %w", rt.name, err)
				}
				load(client, emuT, conc, warmup/5, gz, &tally{})
			}
			if r%2 == 0 {
				load(client, emuT, conc, dur, gz, &emuTally)
				load(client, bareT, conc, dur, gz, &bareTally)
			} else {
				load(client, bareT, conc, dur, gz, &bareTally)
				load(client, emuT, conc, dur, gz, &emuTally)
			}
		}
		emuT.stop()
		runtime.GC()

		er, br := emuTally.rate(), bareTally.rate()
		for _, s := range []struct {
			name string
			t    *tally
			vs   string
		}{
			{"emulator", &emuTally, fmt.Sprintf("%.2f×", er/br)},
			{"bare net/http", &bareTally, "1.00×"},
		} {
			p50, p99 := pct(s.t.lat)
			fmt.Fprintf(tw, "%s\t%s\t%d B\t%.0f\t%s\t%s\t%s\t%d\t%s\t\n", rt.name, s.name, len(a.body),
				s.t.rate(), perRound(s.t.rps), ms(p50), ms(p99), s.t.errs, s.vs)
		}
		for _, t := range []*tally{&emuTally, &bareTally} {
			if t.firstErr != nil {
				fmt.Fprintf(os.Stderr, "bench/emulator: %s: first error: %v\n", rt.name, t.firstErr)
			}
		}
		ep50, ep99 := pct(emuTally.lat)
		bp50, bp99 := pct(bareTally.lat)
		figs = append(figs, summary.Figure{
			Name: rt.title, Value: float64(int64(er)), Unit: "req/s",
			Reference: "bare net/http, same body", RefValue: float64(int64(br)),
			Ratio: float64(int64(er/br*1000)) / 1000, Target: "informational",
			OK: emuTally.errs == 0 && bareTally.errs == 0,
			Note: fmt.Sprintf("%d keep-alive clients, %d×%s alternating rounds, gzip=%v; p50/p99 %s/%s vs %s/%s; errors %d/%d",
				conc, rounds, dur, gz, ms(ep50), ms(ep99), ms(bp50), ms(bp99), emuTally.errs, bareTally.errs),
		})
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		fmt.Printf("peak RSS of this process (load generator + both servers): %.0f MiB\n", float64(ru.Maxrss)/1024)
	}
	var errs int
	for _, f := range figs {
		if !f.OK {
			errs++
		}
	}
	if err := summary.Append(sumPath, figs...); err != nil {
		return err
	}
	if errs > 0 {
		return errors.New("some requests failed (see the errors column)")
	}
	return nil
}

func (t *tally) rate() float64 { return float64(t.n) / t.elapsed.Seconds() }

// load runs conc clients against t for d and adds their results to into.
func load(client *http.Client, t target, conc int, d time.Duration, gz bool, into *tally) {
	type part struct {
		n, errs  int64
		lat      []time.Duration
		firstErr error
	}
	parts := make([]part, conc)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range parts {
		wg.Go(func() {
			p := &parts[i]
			p.lat = make([]time.Duration, 0, 4096)
			req := newRequest(t.url, gz)
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := do(client, req, t.size)
				p.lat = append(p.lat, time.Since(t0))
				p.n++
				if err != nil {
					p.errs++
					if p.firstErr == nil {
						p.firstErr = err
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var n int64
	for i := range parts {
		p := &parts[i]
		n += p.n
		into.n += p.n
		into.errs += p.errs
		into.lat = append(into.lat, p.lat...)
		if into.firstErr == nil {
			into.firstErr = p.firstErr
		}
	}
	into.elapsed += elapsed
	into.rps = append(into.rps, float64(n)/elapsed.Seconds())
}

func newRequest(url string, gz bool) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "TD1 "+apiKey)
	req.Header.Set("User-Agent", "tdctl-bench")
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	return req
}

// do sends req (a GET, so it may be sent again once its answer is read) and
// checks the answer.
func do(client *http.Client, req *http.Request, size int) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: %s", req.URL.Path, resp.Status)
	case n != int64(size):
		return fmt.Errorf("%s: %d bytes, want %d", req.URL.Path, n, size)
	}
	return nil
}

func fetch(client *http.Client, url string, gz bool) (answer, error) {
	resp, err := client.Do(newRequest(url, gz))
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return answer{}, fmt.Errorf("GET %s: %s: %s", resp.Request.URL.Path, resp.Status, body)
	}
	return answer{ctype: resp.Header.Get("Content-Type"), cenc: resp.Header.Get("Content-Encoding"), body: body}, nil
}

// newLoadClient keeps one connection per client goroutine alive and leaves
// the body as sent (no transparent gunzip), like the td client.
func newLoadClient(conc int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 2 * conc
	tr.MaxIdleConnsPerHost = conc
	tr.MaxConnsPerHost = conc
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type server struct {
	base  string
	close func()
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: h}
	go hs.Serve(ln)
	return &server{base: "http://" + ln.Addr().String(), close: func() { hs.Close() }}, nil
}

// startEmulator serves a fresh emulator and returns it with the id of a
// finished query job (issued and waited for through the td client).
func startEmulator(ctx context.Context) (*server, string, error) {
	emu, err := emulator.New(emulator.Options{APIKeys: []string{apiKey}})
	if err != nil {
		return nil, "", err
	}
	s, err := serve(emu)
	if err != nil {
		emu.Close()
		return nil, "", err
	}
	s.close = func(stop func()) func() {
		return func() { stop(); emu.Close() }
	}(s.close)
	c, err := td.NewClient(apiKey, td.WithEndpoint(s.base))
	if err != nil {
		s.close()
		return nil, "", err
	}
	issued, err := c.Jobs.Issue(ctx, &td.IssueRequest{Database: "sample_datasets",
		Query: "SELECT code, COUNT(1) AS n FROM www_access GROUP BY code"})
	if err != nil {
		s.close()
		return nil, "", err
	}
	if _, err := c.Jobs.Wait(ctx, issued.JobID, &td.WaitOptions{MinDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}); err != nil {
		s.close()
		return nil, "", err
	}
	return s, issued.JobID, nil
}

// loadavg tells how busy the machine was at the start (Linux only).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return ", load average " + strings.Join(f[:3], " ")
}

func pct(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func perRound(r []float64) string {
	s := ""
	for i, v := range r {
		if i > 0 {
			s += " / "
		}
		s += fmt.Sprintf("%.0f", v)
	}
	return s
}
