package servertest

import (
	"bufio"
	"context"
	"net/http"
	"strings"
)

// PostStream posts a JSON body to url and calls each with the payload of
// every server-sent "data:" line ("[DONE]" included) until each returns
// false or the stream ends; returning false closes the connection early,
// as a client that leaves mid-stream does.
func PostStream(ctx context.Context, url, body string, each func(data string) bool) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok && !each(data) {
			return nil
		}
	}
	return sc.Err()
}
