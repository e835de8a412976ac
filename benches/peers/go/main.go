// A Go verifying gateway for benches/gateway.rs: verifies Standard Webhooks deliveries with
// crypto/hmac (constant-time compare, 5-minute tolerance) and forwards them with net/http's
// client (keep-alive pool), passing the upstream's status and body back.
//
//	go run . PORT UPSTREAM_URL SECRET
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true,
}

func verified(key []byte, header http.Header, body []byte) bool {
	id, stamp, signatures := header.Get("Webhook-Id"), header.Get("Webhook-Timestamp"), header.Get("Webhook-Signature")
	if id == "" || stamp == "" || signatures == "" {
		return false
	}
	seconds, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return false
	}
	if skew := time.Now().Unix() - seconds; skew > 300 || skew < -300 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + stamp + "."))
	mac.Write(body)
	expected := []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, signature := range strings.Fields(signatures) {
		if strings.HasPrefix(signature, "v1,") && hmac.Equal([]byte(signature[3:]), expected) {
			return true
		}
	}
	return false
}

func main() {
	port, upstream, key := os.Args[1], os.Args[2], []byte(os.Args[3])
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024},
		Timeout:   10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	handler := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if !verified(key, r.Header, body) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		forward, _ := http.NewRequest(http.MethodPost, upstream, bytes.NewReader(body))
		for name, values := range r.Header {
			if !hopByHop[name] {
				forward.Header[name] = values
			}
		}
		answer, err := client.Do(forward)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer answer.Body.Close()
		out, err := io.ReadAll(answer.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(answer.StatusCode)
		w.Write(out)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("listening on", listener.Addr())
	if err := http.Serve(listener, http.HandlerFunc(handler)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
