package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/truegpu/truegpu/attest"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

func init() {
	register(&command{
		Name:  "keygen",
		Usage: "--key FILE",
		Short: "generate a node key (mode 0600) and print its address",
		Flags: func(fs *flag.FlagSet) any {
			k := new(string)
			fs.StringVar(k, "key", "node.key", "where to write the key; an existing file is never overwritten")
			return k
		},
		Run: func(ctx context.Context, e *env, opts any, args []string) error {
			k, err := attest.GenerateNodeKey()
			if err != nil {
				return err
			}
			if err := k.Save(*opts.(*string)); err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, k.Address())
			return nil
		},
	})
	register(&command{
		Name:  "address",
		Usage: "--key FILE",
		Short: "print the address of a node key",
		Flags: func(fs *flag.FlagSet) any {
			k := new(string)
			fs.StringVar(k, "key", "node.key", "node key file")
			return k
		},
		Run: func(ctx context.Context, e *env, opts any, args []string) error {
			k, err := attest.LoadNodeKey(*opts.(*string))
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Stdout, k.Address())
			return nil
		},
	})
	register(&command{
		Name:  "fingerprint",
		Usage: "[--device nvml|cuda|cpu|sim:<profile>] [--gpus LIST]",
		Short: "print the fingerprints of the node's devices as JSON",
		Flags: func(fs *flag.FlagSet) any {
			d := new(deviceFlags)
			d.register(fs)
			return d
		},
		Run: runFingerprint,
	})
	register(&command{
		Name:  "register",
		Usage: "--oracle ADDR [flags]",
		Short: "register the node and its devices once, print the response",
		Flags: func(fs *flag.FlagSet) any { return newRunFlags(fs) },
		Run: func(ctx context.Context, e *env, opts any, args []string) error {
			return runAgent(ctx, e, opts.(*runFlags), true)
		},
	})
	register(&command{
		Name:  "run",
		Usage: "--oracle ADDR [flags]",
		Short: "register and answer challenges until interrupted",
		Flags: func(fs *flag.FlagSet) any { return newRunFlags(fs) },
		Run: func(ctx context.Context, e *env, opts any, args []string) error {
			return runAgent(ctx, e, opts.(*runFlags), false)
		},
	})
}

// deviceJSON is one line of `attestor fingerprint`.
type deviceJSON struct {
	Index        int                `json:"index"`
	ClaimedClass string             `json:"claimed_class,omitempty"`
	Fingerprint  attest.Fingerprint `json:"fingerprint"`
	Digest       string             `json:"identity_digest"`
}

func runFingerprint(ctx context.Context, e *env, opts any, args []string) error {
	f := opts.(*deviceFlags)
	devs, closeAll, err := openDevices(f, "fingerprint")
	if err != nil {
		return err
	}
	defer closeAll()
	var out []deviceJSON
	for i, d := range devs {
		fp, err := d.Device.Fingerprint(ctx)
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		j := deviceJSON{Index: i, Fingerprint: fp}
		if class, err := attest.DeviceClass(d, fp); err == nil {
			j.ClaimedClass = class
		} else {
			fmt.Fprintf(e.Stderr, "attestor: device %d: %v\n", i, err)
		}
		dg := fp.Digest()
		j.Digest = fmt.Sprintf("%x", dg)
		out = append(out, j)
	}
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// runFlags configure run and register.
type runFlags struct {
	devices          deviceFlags
	oracle           string
	key              string
	createKey        bool
	insecure         bool
	tlsCA            string
	devKeys          bool
	provingKeys      listFlag
	proveConcurrency int
	logLevel         string
	logJSON          bool
	cluster          string
}

func newRunFlags(fs *flag.FlagSet) *runFlags {
	r := &runFlags{}
	r.devices.register(fs)
	fs.StringVar(&r.oracle, "oracle", "", "oracle gRPC address, host:port (required)")
	fs.StringVar(&r.key, "key", "node.key", "node key file (0600)")
	fs.BoolVar(&r.createKey, "create-key", false, "generate the key file if it does not exist")
	fs.BoolVar(&r.insecure, "insecure", false, "connect without TLS (development only)")
	fs.StringVar(&r.tlsCA, "tls-ca", "", "PEM file of the CA that signed the oracle's certificate (default: system roots)")
	fs.BoolVar(&r.devKeys, "dev-keys", false, "prove with the UNSAFE deterministic dev keys (for an oracle in dev mode only)")
	fs.Var(&r.provingKeys, "proving-key", "PROFILE=FILE proving key from a ceremony, e.g. standard/v2=standard.pk (repeatable)")
	fs.IntVar(&r.proveConcurrency, "prove-concurrency", 1, "proofs computed at once")
	fs.StringVar(&r.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&r.logJSON, "log-json", false, "log as JSON lines instead of text")
	fs.StringVar(&r.cluster, "cluster", "", "cluster id the node's signed requests are for (default: the one the oracle reports)")
	return r
}

// clusterID returns -cluster, or the cluster id the oracle reports.
func (r *runFlags) clusterID(ctx context.Context, conn grpc.ClientConnInterface) (string, error) {
	if r.cluster != "" {
		return r.cluster, nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := truegpuv1.NewAdminServiceClient(conn).GetCluster(cctx, &truegpuv1.GetClusterRequest{})
	if status.Code(err) == codes.Unimplemented {
		return "", nil // the agent's default, for oracles without AdminService
	}
	if err != nil {
		return "", fmt.Errorf("ask the oracle for its cluster id (or set -cluster): %w", err)
	}
	return resp.GetClusterId(), nil
}

func (r *runFlags) logger(e *env) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(r.logLevel)); err != nil {
		return nil, usageError("--log-level %q: %v", r.logLevel, err)
	}
	o := &slog.HandlerOptions{Level: lvl}
	if r.logJSON {
		return slog.New(slog.NewJSONHandler(e.Stderr, o)), nil
	}
	return slog.New(slog.NewTextHandler(e.Stderr, o)), nil
}

func (r *runFlags) dial() (*grpc.ClientConn, error) {
	if r.oracle == "" {
		return nil, usageError("--oracle is required (host:port of an oracle member)")
	}
	var creds credentials.TransportCredentials
	switch {
	case r.insecure:
		creds = insecure.NewCredentials()
	case r.tlsCA != "":
		pem, err := os.ReadFile(r.tlsCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificates found", r.tlsCA)
		}
		creds = credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	default:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(r.oracle, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", r.oracle, err)
	}
	return conn, nil
}

// keySource returns proving keys from --proving-key files, falling back to
// dev keys when --dev-keys is set.
func (r *runFlags) keySource() (attest.KeySource, error) {
	files := map[string]string{}
	for _, kv := range r.provingKeys {
		id, path, ok := strings.Cut(kv, "=")
		if !ok || id == "" || path == "" {
			return nil, usageError("--proving-key %q: want PROFILE=FILE, e.g. standard/v2=standard.pk", kv)
		}
		p, err := prover.ProfileByID(id)
		if err != nil {
			return nil, usageError("--proving-key %q: %v", kv, err)
		}
		files[p.ID()] = path
	}
	if len(files) == 0 && !r.devKeys {
		return nil, usageError("no proving keys: pass --proving-key PROFILE=FILE, or --dev-keys against an oracle in dev mode")
	}
	var dev attest.KeySource
	if r.devKeys {
		dev = attest.DevKeys()
	}
	var mu sync.Mutex
	loaded := map[string]*prover.ProvingKey{}
	return func(p *prover.Profile) (*prover.ProvingKey, error) {
		mu.Lock()
		defer mu.Unlock()
		if pk, ok := loaded[p.ID()]; ok {
			return pk, nil
		}
		path, ok := files[p.ID()]
		if !ok {
			if dev != nil {
				return dev(p)
			}
			return nil, fmt.Errorf("no proving key for %s: pass --proving-key %s=FILE", p.ID(), p.ID())
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("proving key for %s: %w", p.ID(), err)
		}
		defer f.Close()
		pk, err := prover.ReadProvingKey(f, p)
		if err != nil {
			return nil, fmt.Errorf("proving key %s for %s: %w", path, p.ID(), err)
		}
		loaded[p.ID()] = pk
		return pk, nil
	}, nil
}

func (r *runFlags) loadKey(log *slog.Logger) (*attest.NodeKey, error) {
	if r.createKey {
		k, created, err := attest.LoadOrCreateNodeKey(r.key)
		if err == nil && created {
			log.Info("created node key", "file", r.key, "address", k.Address())
		}
		return k, err
	}
	k, err := attest.LoadNodeKey(r.key)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w; create one with `attestor keygen --key %s` or pass --create-key", err, r.key)
	}
	return k, err
}

func runAgent(ctx context.Context, e *env, r *runFlags, registerOnly bool) error {
	// Check the arguments before anything touches the disk (--create-key).
	if r.oracle == "" {
		return usageError("--oracle is required (host:port of an oracle member)")
	}
	log, err := r.logger(e)
	if err != nil {
		return err
	}
	key, err := r.loadKey(log)
	if err != nil {
		return err
	}
	keys, err := r.keySource()
	if err != nil && !registerOnly {
		return err
	}
	if registerOnly && keys == nil {
		keys = attest.DevKeys() // never called: registration needs no proofs
	}
	conn, err := r.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	devs, closeAll, err := openDevices(&r.devices, key.Address().String())
	if err != nil {
		return err
	}
	defer closeAll()
	cluster, err := r.clusterID(ctx, conn)
	if err != nil {
		return err
	}
	agent, err := attest.NewAgent(ctx, attest.AgentConfig{
		Cluster:          cluster,
		Client:           truegpuv1.NewNodeServiceClient(conn),
		Key:              key,
		Devices:          devs,
		Keys:             keys,
		Logger:           log,
		ProveConcurrency: r.proveConcurrency,
	})
	if err != nil {
		return err
	}
	if registerOnly {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		resp, err := agent.Register(rctx)
		if err != nil {
			return err
		}
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.Stdout, string(b))
		return nil
	}
	log.Info("attestor starting", "node", agent.Address(), "oracle", r.oracle, "device", r.devices.spec, "classes", agent.Classes())
	return agent.Run(ctx)
}
