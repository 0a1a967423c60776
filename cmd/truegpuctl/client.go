package main

// Shared plumbing of the client verbs (nodes, node, feed, cluster, members):
// connection flags, the gRPC connection, output formats and error text.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// defaultServer is the oracle member's gRPC address when neither --server nor
// TRUEGPU_SERVER is set.
const defaultServer = "127.0.0.1:9090"

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	server     string
	tls        bool
	tlsCA      string
	tlsCert    string
	tlsKey     string
	serverName string
	timeout    time.Duration
	output     string
}

// register adds the connection and output flags to fs.
func (c *clientFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("TRUEGPU_SERVER")
	if def == "" {
		def = defaultServer
	}
	fs.StringVar(&c.server, "server", def, "oracle member's gRPC address `host:port` (env TRUEGPU_SERVER)")
	fs.BoolVar(&c.tls, "tls", false, "use TLS with the system's root certificates (implied by --tls-ca and --tls-cert)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM `file` of the CA that signed the server's certificate")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM `file` of this client's certificate, for mutual TLS (needs --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM `file` of this client's private key")
	fs.StringVar(&c.serverName, "tls-server-name", "", "expected `name` in the server's certificate (default: the host of --server)")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Second, "deadline of each call")
	fs.StringVar(&c.output, "o", "table", "output `format`: table or json")
}

// validate checks the flags that do not need the network.
func (c *clientFlags) validate() error {
	switch c.output {
	case "table", "json":
	default:
		return usageError("-o %q: use table or json", c.output)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usageError("--tls-cert and --tls-key go together (mutual TLS needs both)")
	}
	if c.server == "" {
		return usageError("--server is empty; give the oracle member's gRPC host:port")
	}
	return nil
}

// transportCredentials builds the connection's security from the flags.
func (c *clientFlags) transportCredentials() (credentials.TransportCredentials, error) {
	cfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		return insecure.NewCredentials(), nil
	}
	return credentials.NewTLS(cfg), nil
}

// tlsConfig is the TLS configuration the flags ask for; nil means
// plaintext.
func (c *clientFlags) tlsConfig() (*tls.Config, error) {
	if !c.tls && c.tlsCA == "" && c.tlsCert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName}
	if c.tlsCA != "" {
		pem, err := os.ReadFile(c.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("read --tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", c.tlsCA)
		}
		cfg.RootCAs = pool
	}
	if c.tlsCert != "" {
		pair, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("load client certificate --tls-cert %s / --tls-key %s: %w", c.tlsCert, c.tlsKey, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// dial opens a client connection to the oracle member. gRPC connects
// lazily; connection problems surface on the first call.
func (c *clientFlags) dial() (*grpc.ClientConn, error) {
	creds, err := c.transportCredentials()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(c.server, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.server, err)
	}
	return conn, nil
}

// call runs fn with a connection and the call deadline.
func (c *clientFlags) call(fn func(ctx context.Context, conn *grpc.ClientConn) error) error {
	if err := c.validate(); err != nil {
		return err
	}
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	return fn(ctx, conn)
}

// rpcError is a failed call, explained for the person at the terminal. It
// wraps the gRPC status error, so status.Code and errors.Is still work.
type rpcError struct {
	server string
	what   string
	err    error
}

func (e *rpcError) Error() string {
	st, _ := status.FromError(e.err)
	msg := st.Message()
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Sprintf("%s: cannot reach the oracle member at %s (%s); check --server or TRUEGPU_SERVER, and the TLS flags", e.what, e.server, msg)
	case codes.DeadlineExceeded:
		return fmt.Sprintf("%s: no answer from %s before the deadline; raise --timeout or check the member's health", e.what, e.server)
	case codes.Unimplemented:
		return fmt.Sprintf("%s: the member at %s does not serve this call (%s); is it a TrueGPU oracle of a matching version?", e.what, e.server, msg)
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Sprintf("%s: %s (%s); operator calls need a client certificate the cluster trusts (--tls-cert, --tls-key)", e.what, msg, codeName(st.Code()))
	}
	return fmt.Sprintf("%s: %s (%s)", e.what, msg, codeName(st.Code()))
}

func (e *rpcError) Unwrap() error { return e.err }

// codeName is a gRPC code in words, e.g. "not found".
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte(' ')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (c *clientFlags) rpcErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return &rpcError{server: c.server, what: what, err: err}
}

// printJSON writes m as indented protojson with every field present: the
// same field names as the REST API (lowerCamelCase), 64-bit integers as
// strings, bytes as base64.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// table is an aligned text table.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		// Cells come from the network: keep tabs and newlines out of the layout.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c)
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// parseArgs parses flags that follow positional arguments ("node 0xabc -o
// json"): the command table stops at the first positional argument. It
// returns the positional arguments.
func parseArgs(ctx *runContext, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		if !strings.HasPrefix(args[0], "-") || args[0] == "-" {
			pos = append(pos, args[0])
			args = args[1:]
			continue
		}
		if err := ctx.Flags.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelpShown
			}
			return nil, usageError("%v", err)
		}
		args = ctx.Flags.Args()
	}
	return pos, nil
}

// errHelpShown ends a verb after -h printed its help.
var errHelpShown = errors.New("help shown")

// finish turns errHelpShown into success.
func finish(err error) error {
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// pct formats basis points as a percentage.
func pct(bp uint32) string {
	return fmt.Sprintf("%d.%02d%%", bp/100, bp%100)
}

// fmtTime formats unix milliseconds in UTC; 0 is "-".
func fmtTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// statusWord is a status in lower case, e.g. "trusted".
func statusWord(s truegpuv1.NodeStatus) string {
	if s == truegpuv1.NodeStatus_NODE_STATUS_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "NODE_STATUS_"))
}
