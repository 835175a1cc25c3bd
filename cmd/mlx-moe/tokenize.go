package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/mlx-moe/mlx-moe/tokenizer"
)

var tokenizeCmd = &command{name: "tokenize", summary: "print the token ids of a text as a JSON array"}

func init() {
	tokenizeCmd.run = runTokenize
	register(tokenizeCmd)
}

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(tokenizeCmd, "tokenize [--model DIR] [--file PATH | TEXT]\n\n"+
		"Encodes like Hugging Face's encode(text, add_special_tokens=False): added tokens\n"+
		"written in the text (<|im_start|>, ...) become their ids, nothing is added around it.\n"+
		"With --file the file's exact bytes are the text (-: standard input). DIR needs only\n"+
		"tokenizer.json (or tokenizer.json.gz) and, if the model has one, tokenizer_config.json.", stderr)
	dir := fs.String("model", "", "model directory (tokenizer.json, tokenizer_config.json)"+defaultModelHelp)
	file := fs.String("file", "", "read the text from this file instead of the argument (-: standard input)")
	special := fs.Bool("add-special-tokens", false, "also add the tokens the model puts around a prompt (BOS, ...)")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	var text string
	switch {
	case *file != "" && len(rest) > 0:
		return fmt.Errorf("give the text once: --file PATH or TEXT, not both")
	case *file == "-":
		data, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("--file -: %w", err)
		}
		text = string(data)
	case *file != "":
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		text = string(data)
	case len(rest) == 1:
		text = rest[0]
	case len(rest) > 1:
		return fmt.Errorf("give the text as one argument (quote it), got %d", len(rest))
	default:
		return fmt.Errorf("no text: pass TEXT or --file PATH")
	}
	d, err := modelDir(*dir)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(d)
	if err != nil {
		return err
	}
	encode := tok.Encode
	if *special {
		encode = tok.EncodeWithSpecialTokens
	}
	out, err := json.Marshal(encode(text))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
