// Command recorder prints how Go's libcni converts the result fixtures of cni-types to
// every spec version it knows, as one JSON object: "<source>-as-<version>" -> the printed
// result, or {"error": "..."}. Our own code; it only calls libcni's public API
// (create.CreateFromBytes, Result.GetAsVersion).
//
// It builds offline against Debian's golang-github-appc-cni-dev (libcni source in
// /usr/share/gocode), with no module download:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run cni-types/tests/recorder/main.go \
//	    cni-types/tests/fixtures/results > cni-types/tests/fixtures/results/go-libcni.json
//
// libcni 1.1.x knows spec versions up to 1.0.0: a 1.1.0 source is read as 1.0.0 (its 1.1.0
// fields are dropped, as a 1.0.0 consumer would), and no 1.1.0 output is recorded.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/containernetworking/cni/pkg/types/create"

	// The version packages register their converters when imported.
	_ "github.com/containernetworking/cni/pkg/types/020"
	_ "github.com/containernetworking/cni/pkg/types/040"
	_ "github.com/containernetworking/cni/pkg/types/100"
)

var sources = []string{"source-1.x", "source-0.4", "source-0.2", "source-0.2-v6only"}

var targets = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"}

func record(dir, src, to string) (interface{}, error) {
	raw, err := os.ReadFile(filepath.Join(dir, src+".json"))
	if err != nil {
		return nil, err
	}
	var probe map[string]interface{}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	if probe["cniVersion"] == "1.1.0" {
		probe["cniVersion"] = "1.0.0"
		if raw, err = json.Marshal(probe); err != nil {
			return nil, err
		}
	}
	res, err := create.CreateFromBytes(raw)
	if err != nil {
		return map[string]string{"error": err.Error()}, nil
	}
	conv, err := res.GetAsVersion(to)
	if err != nil {
		return map[string]string{"error": err.Error()}, nil
	}
	var out bytes.Buffer
	if err := conv.PrintTo(&out); err != nil {
		return nil, err
	}
	var v interface{}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		return nil, err
	}
	return v, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: recorder <fixtures/results directory>")
		os.Exit(2)
	}
	all := map[string]interface{}{}
	for _, src := range sources {
		for _, to := range targets {
			v, err := record(os.Args[1], src, to)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s as %s: %v\n", src, to, err)
				os.Exit(1)
			}
			all[src+"-as-"+to] = v
		}
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// encoding/json sorts map keys: the output is stable.
	out, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
