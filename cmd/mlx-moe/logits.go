package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

var logitsCmd = &command{name: "logits", summary: "print the logits at the last position of a token sequence"}

func init() {
	logitsCmd.run = runLogits
	register(logitsCmd)
}

func runLogits(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(logitsCmd, "logits [--model DIR] --ids 1,2,3", stderr)
	var mf modelFlags
	mf.register(fs, defaultModelHelp)
	idsFlag := fs.String("ids", "", "comma-separated token ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *idsFlag == "" {
		return fmt.Errorf("--ids is required")
	}
	ids, err := parseIDs(*idsFlag)
	if err != nil {
		return err
	}
	m, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	logits, err := m.Logits(ids)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string][]float32{"last_logits": logits})
}

var nllCmd = &command{name: "nll", summary: "mean negative log-likelihood of a token sequence (one prefill pass)"}

func init() {
	nllCmd.run = runNLL
	register(nllCmd)
}

func runNLL(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(nllCmd, "nll [--model DIR] --ids-file PATH\n\nPATH holds a JSON array of token ids; prints {\"mean_nll\": x, \"tokens\": n},\nthe mean over positions 1..n-1 of -log p(token | prefix).", stderr)
	var mf modelFlags
	mf.register(fs, defaultModelHelp)
	idsFile := fs.String("ids-file", "", "JSON array of token ids")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *idsFile == "" {
		return fmt.Errorf("--ids-file is required")
	}
	data, err := os.ReadFile(*idsFile)
	if err != nil {
		return err
	}
	var ids []int32
	if err := json.Unmarshal(data, &ids); err != nil {
		return fmt.Errorf("%s: expected a JSON array of token ids: %v", *idsFile, err)
	}
	if mf.context == 0 {
		mf.context = len(ids) + 1
	}
	m, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	nll, err := m.MeanNLL(ids)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(map[string]any{"mean_nll": nll, "tokens": len(ids)})
}
