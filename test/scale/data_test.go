package scale

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// valueSize is the length of every secret's JSON value.
const valueSize = 1024

// perDir is how many secrets share a directory.
const perDir = 100

// keys are the top-level keys of every secret's JSON value, each a file.
func keys() []string { return []string{"username", "password", "host", "note"} }

// filesPerSecret is AWSCURRENT plus one file per key.
func filesPerSecret() int { return 1 + len(keys()) }

// secretName is the name of secret i.
func secretName(i int) string { return fmt.Sprintf("scale/g%03d/s%05d", i/perDir, i) }

// secretValue is secret i's JSON value at generation gen (0 when created,
// then one more per rotation): valueSize bytes, every key's value different
// in each generation.
func secretValue(i, gen int) string {
	v := map[string]string{
		"username": fmt.Sprintf("user-%05d-%d", i, gen),
		"password": fmt.Sprintf("pw-%05d-%d-%s", i, gen, strings.Repeat("x", 24)),
		"host":     fmt.Sprintf("db-%05d-%d.example.internal", i, gen),
		"note":     "",
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	pad := fmt.Sprintf("n%05d-%d-", i, gen)
	v["note"] = (pad + strings.Repeat("z", valueSize))[:valueSize-len(b)]
	b, err = json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// secretFiles maps the path of each file of secret i, relative to the
// mount, to its content at generation gen.
func secretFiles(i, gen int) map[string]string {
	val := secretValue(i, gen)
	var v map[string]string
	if err := json.Unmarshal([]byte(val), &v); err != nil {
		panic(err)
	}
	dir := secretName(i)
	files := map[string]string{dir + "/AWSCURRENT": val}
	for _, k := range keys() {
		files[dir+"/"+k] = v[k]
	}
	return files
}

// sizes parses a comma-separated list of sizes from the environment
// variable env, or returns def when it is unset.
func sizes(t *testing.T, env string, def ...int) []int {
	t.Helper()
	s := os.Getenv(env)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(f, "_", "")))
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want sizes separated by commas, such as 100,1000,10000", env, s)
		}
		out = append(out, n)
	}
	return out
}
