package operators

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/tdctl/tdctl/workflow"
)

// keySpec lists the keys an operator reads beside its "op>:" key. In digdag
// every such key is also a param of the task, so a key an operator does not
// read is still used when the task's own ${...} (its command, its other
// settings, a td> query file) refers to it; any other key is reported at
// check time — with the closest known key when it looks like a typo, or as
// a digdag setting tdctl does not support.
type keySpec struct {
	op    string
	known []string
	// digdag holds keys digdag's operator reads that tdctl does not, with
	// what to do instead.
	digdag map[string]string
}

// identRef finds the names a ${...} expression mentions.
var (
	exprRef  = regexp.MustCompile(`\$\{[^}]*\}`)
	identRef = regexp.MustCompile(`[A-Za-z_][A-Za-z_0-9]*`)
)

// referenced adds every identifier used inside ${...} in s to names.
func referenced(s string, names map[string]bool) {
	for _, e := range exprRef.FindAllString(s, -1) {
		for _, id := range identRef.FindAllString(e, -1) {
			names[id] = true
		}
	}
}

func nodeRefs(n *yaml.Node, names map[string]bool) {
	if n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode {
		referenced(n.Value, names)
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		nodeRefs(n.Alias, names)
	}
	for _, c := range n.Content {
		nodeRefs(c, names)
	}
}

// check reports the keys of t that spec's operator does not use. extra is
// more text the task interpolates (a td> query file).
func (spec keySpec) check(t *workflow.Task, extra string) error {
	var unknown []string
	used := map[string]bool{}
	nodeRefs(t.Command, used)
	for _, p := range t.Params {
		nodeRefs(p.Node, used)
	}
	nodeRefs(t.Env, used)
	referenced(extra, used)
	for _, p := range t.Params {
		k := p.Key
		if contains(spec.known, k) || used[k] {
			continue
		}
		if why, ok := spec.digdag[k]; ok {
			unknown = append(unknown, fmt.Sprintf("%s is a digdag %s> setting tdctl does not support: %s", k, spec.op, why))
			continue
		}
		if c := workflow.ClosestKey(k, spec.known); c != "" {
			unknown = append(unknown, fmt.Sprintf("unknown %s> key %s (did you mean %s?)", spec.op, k, c))
			continue
		}
		known := append([]string(nil), spec.known...)
		sort.Strings(known)
		unknown = append(unknown, fmt.Sprintf("unknown %s> key %s: %s> reads %s; a key the task's ${...} does not use is a mistake", spec.op, k, spec.op, strings.Join(known, ", ")))
	}
	if len(unknown) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(unknown, "; "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tdKeys are the settings td> reads, beside td>: or as td.* defaults.
var tdSpec = keySpec{
	op: "td",
	known: []string{"database", "engine", "priority", "job_retry", "engine_version", "hive_engine_version",
		"result_url", "result_connection", "result_settings", "insert_into", "create_table", "store_last_results",
		"download_file", "preview", "hive_pool_name", "presto_pool_name", "pool_name", "domain_key", "query", "data"},
	digdag: map[string]string{
		"apikey":   "tdctl uses its configured API key (TD_API_KEY, --profile)",
		"endpoint": "tdctl uses its configured endpoint (TD_API_SERVER, --profile)",
		"use_ssl":  "tdctl always uses its configured endpoint's scheme",
		"proxy":    "set HTTPS_PROXY in tdctl's environment",
	},
}

var resultExportSpec = keySpec{op: "td_result_export", known: []string{"job_id", "result_url", "result_connection", "result_settings"},
	digdag: map[string]string{"apikey": "tdctl uses its configured API key", "endpoint": "tdctl uses its configured endpoint"}}

var echoSpec = keySpec{op: "echo"}
