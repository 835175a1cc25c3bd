package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mlx-moe/mlx-moe/chat"
)

var templateCmd = &command{name: "template", summary: "render a chat request with the model's chat template"}

func init() {
	templateCmd.run = runTemplate
	register(templateCmd)
}

func runTemplate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(templateCmd, "template [--model DIR] --request PATH\n\n"+
		"PATH holds {\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": true, ...};\n"+
		"other keys are template variables (enable_thinking, ...). Prints the prompt exactly,\n"+
		"with no newline added. DIR needs only tokenizer_config.json or chat_template.jinja.", stderr)
	dir := fs.String("model", "", "model directory (tokenizer_config.json, chat_template.jinja)"+defaultModelHelp)
	reqPath := fs.String("request", "", "JSON request file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *reqPath == "" {
		return fmt.Errorf("--request PATH is required")
	}
	d, err := modelDir(*dir)
	if err != nil {
		return err
	}
	tmpl, err := chat.LoadTemplate(d)
	if err != nil {
		return err
	}
	tmpl.Notes = stderr
	req, err := os.ReadFile(*reqPath)
	if err != nil {
		return err
	}
	prompt, err := tmpl.RenderRequest(req)
	if err != nil {
		return fmt.Errorf("%s: %v", *reqPath, err)
	}
	_, err = io.WriteString(stdout, prompt)
	return err
}
