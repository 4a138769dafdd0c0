package cmdutil

import "github.com/tdctl/tdctl/td"

// known is every secret value this process has been given: the API key,
// the passwords of the endpoint, result, export and store URLs, the
// workflow's ${secret:...} values. The TD client shares the set (see
// factory), so what a command learns after the client was made is masked
// in the client's errors and --debug lines too.
var known td.Secrets

// KnownSecrets is the process's set of secret values.
func KnownSecrets() *td.Secrets { return &known }

// AddSecrets adds secret values to mask in every output of the process.
func AddSecrets(vals ...string) { known.Add(vals...) }

// AddURLSecrets adds the secrets that URLs carry (td.URLSecrets): a result
// URL, an endpoint, a param store URL.
func AddURLSecrets(urls ...string) {
	for _, u := range urls {
		known.Add(td.URLSecrets(u)...)
	}
}

// Redact masks every known secret in s, then applies td.Redact. Every
// message, log line and printed field that may hold user-given text goes
// through it.
func Redact(s string) string { return known.Redact(s) }
