// acmecm replays cert-manager's ACME sequence (compat/acme-cert-manager.md
// 1.3, 1.4, 1.7) against a directory with golang.org/x/crypto/acme, the
// library cert-manager's client is forked from. It exits non-zero, with the
// reason on stderr, on any deviation from what cert-manager accepts.
//
//	acmecm -dir URL -name DNSNAME -port N -out chain.pem
//	       [-eab-kid ID -eab-key KEY] [-denied NAME]
//
// -port is the loopback port of the program's own http-01 listener (the
// server's config/acme http01_port must name it). -denied is a name outside
// the role: its newOrder must be refused with rejectedIdentifier.
//
// Built offline by test_acme_clients.py in GOPATH mode over Debian's
// packaged sources (golang-golang-x-crypto-dev 0.4.0):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o acmecm .
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// exchange is one HTTP round trip as the recorder saw it.
type exchange struct {
	method, url string
	status      int
	nonce       bool
	ctype       string
	body        []byte
}

// recorder wraps the transport so every answer can be checked afterwards
// (status codes, Replay-Nonce, content types) the way cert-manager's client
// depends on them.
type recorder struct {
	mu   sync.Mutex
	log  []exchange
	next http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	r.log = append(r.log, exchange{req.Method, req.URL.String(), res.StatusCode,
		res.Header.Get("Replay-Nonce") != "", res.Header.Get("Content-Type"), body})
	r.mu.Unlock()
	return res, nil
}

// find returns the exchanges for a method and URL.
func (r *recorder) find(method, url string) []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []exchange
	for _, e := range r.log {
		if e.method == method && e.url == url {
			out = append(out, e)
		}
	}
	return out
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "acmecm: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	dirURL := flag.String("dir", "", "ACME directory URL")
	name := flag.String("name", "", "DNS name to order")
	port := flag.Int("port", 0, "loopback port of the http-01 listener")
	out := flag.String("out", "", "where the PEM chain is written")
	eabKID := flag.String("eab-kid", "", "EAB key id")
	eabKey := flag.String("eab-key", "", "EAB MAC key, unpadded base64url")
	denied := flag.String("denied", "", "a name outside the role")
	flag.Parse()
	if *dirURL == "" || *name == "" || *port == 0 || *out == "" {
		fail("usage: -dir -name -port -out are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	rec := &recorder{next: http.DefaultTransport}
	hc := &http.Client{Transport: rec, Timeout: 90 * time.Second}

	// The http-01 listener: key authorizations by token.
	var tokMu sync.Mutex
	tokens := map[string]string{}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fail("http-01 listener: %v", err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokMu.Lock()
		ka, ok := tokens[r.URL.Path]
		tokMu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, ka)
	}))

	// cm account keys are always RSA-2048, so every JWS is RS256 (1.4).
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fail("account key: %v", err)
	}
	cl := &acme.Client{Key: key, DirectoryURL: *dirURL, HTTPClient: hc, UserAgent: "sigil-acmecm"}
	dir, err := cl.Discover(ctx)
	if err != nil {
		fail("directory: %v", err)
	}
	if dir.NonceURL == "" || dir.RegURL == "" || dir.OrderURL == "" || dir.RevokeURL == "" || dir.KeyChangeURL == "" {
		fail("directory lacks a resource: %+v", dir)
	}

	// cm takes its first nonce with HEAD newNonce; a missing header is fatal
	// for it ("acme: nonce not found").
	hreq, _ := http.NewRequestWithContext(ctx, http.MethodHead, dir.NonceURL, nil)
	hres, err := hc.Do(hreq)
	if err != nil {
		fail("HEAD newNonce: %v", err)
	}
	hres.Body.Close()
	if (hres.StatusCode != 200 && hres.StatusCode != 204) || hres.Header.Get("Replay-Nonce") == "" {
		fail("HEAD newNonce: status %d, Replay-Nonce %q", hres.StatusCode, hres.Header.Get("Replay-Nonce"))
	}

	// newAccount with EAB HS256; the MAC key is unpadded base64url (finding 2).
	acct := &acme.Account{Contact: []string{"mailto:cm@example.com"}}
	var eab *acme.ExternalAccountBinding
	if *eabKID != "" {
		if strings.ContainsAny(*eabKey, "=+/") {
			fail("EAB key %d chars is not unpadded base64url", len(*eabKey))
		}
		mac, err := base64.RawURLEncoding.DecodeString(*eabKey)
		if err != nil {
			fail("EAB key does not decode as unpadded base64url: %v", err)
		}
		eab = &acme.ExternalAccountBinding{KID: *eabKID, Key: mac}
		acct.ExternalAccountBinding = eab
	}
	acct, err = cl.Register(ctx, acct, acme.AcceptTOS)
	if err != nil {
		fail("newAccount: %v", err)
	}
	if acct.URI == "" {
		fail("newAccount: no Location")
	}
	regs := rec.find("POST", dir.RegURL)
	if len(regs) != 1 || regs[0].status != 201 {
		fail("newAccount: want exactly one 201, got %+v", regs)
	}

	// A second client (a controller restart): onlyReturnExisting learns the kid.
	cl2 := &acme.Client{Key: key, DirectoryURL: *dirURL, HTTPClient: hc, UserAgent: "sigil-acmecm"}
	got, err := cl2.GetReg(ctx, "")
	if err != nil {
		fail("onlyReturnExisting: %v", err)
	}
	if got.URI != acct.URI {
		fail("onlyReturnExisting: Location %q, want %q", got.URI, acct.URI)
	}
	// Re-registration of the bound key resends EAB (cm#2882): 200 + the same
	// Location before the (now consumed) EAB key is looked at.
	cl3 := &acme.Client{Key: key, DirectoryURL: *dirURL, HTTPClient: hc, UserAgent: "sigil-acmecm"}
	again := &acme.Account{ExternalAccountBinding: eab}
	if _, err := cl3.Register(ctx, again, acme.AcceptTOS); err != acme.ErrAccountAlreadyExists {
		fail("re-registration: want ErrAccountAlreadyExists, got %v", err)
	}
	if string(cl3.KID) != acct.URI {
		fail("re-registration: kid %q, want %q", cl3.KID, acct.URI)
	}

	// newOrder: 201 only (x/crypto enforces it too).
	order, err := cl2.AuthorizeOrder(ctx, acme.DomainIDs(*name))
	if err != nil {
		fail("newOrder: %v", err)
	}
	if order.URI == "" || order.FinalizeURL == "" || len(order.AuthzURLs) != 1 || order.Expires.IsZero() {
		fail("newOrder: incomplete order %+v", order)
	}
	for _, au := range order.AuthzURLs {
		az, err := cl2.GetAuthorization(ctx, au)
		if err != nil {
			fail("authz: %v", err)
		}
		if az.Identifier.Value != *name || az.Expires.IsZero() {
			fail("authz: identifier %+v, expires %v", az.Identifier, az.Expires)
		}
		var chal *acme.Challenge
		for _, c := range az.Challenges {
			if c.Type == "http-01" {
				chal = c
			}
		}
		if chal == nil {
			fail("authz offers no http-01")
		}
		ka, err := cl2.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			fail("key authorization: %v", err)
		}
		tokMu.Lock()
		tokens[cl2.HTTP01ChallengePath(chal.Token)] = ka
		tokMu.Unlock()
		if _, err := cl2.Accept(ctx, chal); err != nil {
			fail("challenge accept: %v", err)
		}
		// A second accept of a processing/valid challenge must return the
		// challenge, never malformed (cm would mark it expired).
		if _, err := cl2.Accept(ctx, chal); err != nil {
			fail("second challenge accept: %v", err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
		az, err = cl2.WaitAuthorization(wctx, au)
		wcancel()
		if err != nil {
			fail("WaitAuthorization: %v", err)
		}
		if az.Status != acme.StatusValid {
			fail("authz status %q", az.Status)
		}
	}
	o, err := cl2.GetOrder(ctx, order.URI)
	if err != nil || o.Status != acme.StatusReady {
		fail("order after the challenges: %v status %v", err, o)
	}

	// finalize: 200 only, with the order already valid (finding 10).
	ckey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fail("certificate key: %v", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: *name}, DNSNames: []string{*name}}, ckey)
	if err != nil {
		fail("CSR: %v", err)
	}
	ders, certURL, err := cl2.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		fail("finalize: %v", err)
	}
	fins := rec.find("POST", order.FinalizeURL)
	if len(fins) != 1 || fins[0].status != 200 {
		fail("finalize: want exactly one 200, got %d answers", len(fins))
	}
	var fo struct {
		Status      string `json:"status"`
		Certificate string `json:"certificate"`
	}
	if err := json.Unmarshal(fins[0].body, &fo); err != nil || fo.Status != "valid" || fo.Certificate != certURL {
		fail("finalize answer: %v %q", err, fins[0].body)
	}
	certs := rec.find("POST", certURL)
	if len(certs) != 1 || certs[0].ctype != "application/pem-certificate-chain" {
		fail("certificate download: %+v", certs)
	}
	if len(ders) < 1 || len(ders) > 5 {
		fail("chain of %d certificates", len(ders))
	}
	leaf, err := x509.ParseCertificate(ders[0])
	if err != nil {
		fail("leaf: %v", err)
	}
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != *name {
		fail("leaf SANs %v", leaf.DNSNames)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&ckey.PublicKey) {
		fail("leaf key is not the CSR key")
	}
	var buf bytes.Buffer
	for _, d := range ders {
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: d})
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		fail("write chain: %v", err)
	}

	// A name outside the role: 400 rejectedIdentifier.
	if *denied != "" {
		_, err := cl2.AuthorizeOrder(ctx, acme.DomainIDs(*denied))
		var ae *acme.Error
		if !errors.As(err, &ae) || ae.StatusCode != 400 || ae.ProblemType != "urn:ietf:params:acme:error:rejectedIdentifier" {
			fail("order for %s: want 400 rejectedIdentifier, got %v", *denied, err)
		}
	}

	// Every POST answer carried a Replay-Nonce (cm takes every later nonce
	// from them) and every error was a problem document.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, e := range rec.log {
		if e.method == "POST" && !e.nonce {
			fail("POST %s: HTTP %d without Replay-Nonce", e.url, e.status)
		}
		if e.status >= 400 && e.ctype != "application/problem+json" {
			fail("%s %s: HTTP %d with Content-Type %q", e.method, e.url, e.status, e.ctype)
		}
	}
	fmt.Printf("acmecm: ok, %d requests, certificate %s\n", len(rec.log), certURL)
}
