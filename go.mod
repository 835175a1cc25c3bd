module github.com/mlx-moe/mlx-moe

go 1.26.0

require (
	github.com/dlclark/regexp2/v2 v2.13.0
	github.com/go-chi/chi/v5 v5.5.0
	github.com/progrium/darwinkit v0.5.0
	golang.org/x/text v0.44.0
)

require (
	github.com/schollz/progressbar/v3 v3.19.1
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require (
	github.com/mitchellh/colorstring v0.0.0-20190213212951-d06e56a500db // indirect
	github.com/rivo/uniseg v0.4.7 // indirect
)

require github.com/chzyer/readline v1.5.1
