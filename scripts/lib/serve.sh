# Shell helpers for scripts that run `mlx-moe serve`; source this file.

# start_serve LOG BIN [FLAGS...]: starts BIN serve on a free port with its
# stderr in LOG, sets $pid and $addr once it listens; exits the script with
# the log when it does not start within 30 s.
start_serve() {
	local log="$1" bin="$2"
	shift 2
	"$bin" serve --port 0 "$@" 2>"$log" &
	pid=$!
	addr=""
	for _ in $(seq 300); do
		addr="$(sed -n 's/^mlx-moe serve: listening on //p' "$log")"
		[ -n "$addr" ] && return 0
		sleep 0.1
	done
	echo "serve did not start:"
	cat "$log"
	kill "$pid"
	exit 1
}

# stop_serve: SIGTERM to the server start_serve started; it must exit 0.
stop_serve() {
	kill -TERM "$pid"
	wait "$pid" || { echo "serve did not exit 0 after SIGTERM"; exit 1; }
}
