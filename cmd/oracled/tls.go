package main

import (
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// tlsStreamLayer carries Raft over mutual TLS.
type tlsStreamLayer struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

func newTLSStreamLayer(bind, advertise string, server, client *tls.Config) (*tlsStreamLayer, error) {
	l, err := tls.Listen("tcp", bind, server)
	if err != nil {
		return nil, err
	}
	var adv net.Addr = l.Addr()
	if advertise != "" {
		if adv, err = net.ResolveTCPAddr("tcp", advertise); err != nil {
			l.Close()
			return nil, err
		}
	}
	return &tlsStreamLayer{Listener: l, advertise: adv, client: client}, nil
}

func (s *tlsStreamLayer) Addr() net.Addr { return s.advertise }

func (s *tlsStreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if address == "" {
		return nil, errors.New("empty raft address")
	}
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(address), s.client)
}
