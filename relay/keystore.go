package relay

import (
	"crypto/ecdsa"
	"fmt"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/keystore"
)

// LoadKey decrypts an encrypted go-ethereum keystore file (Web3 Secret
// Storage, as `geth account new` and clef write) with the passphrase in
// passwordFile (its first line).
func LoadKey(keyFile, passwordFile string) (*ecdsa.PrivateKey, error) {
	keyJSON, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read the keystore file: %w", err)
	}
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		return nil, fmt.Errorf("read the password file: %w", err)
	}
	pass, _, _ := strings.Cut(string(pw), "\n")
	pass = strings.TrimSuffix(pass, "\r")
	k, err := keystore.DecryptKey(keyJSON, pass)
	if err != nil {
		return nil, fmt.Errorf("decrypt the keystore file %s: %w (is the password file the right one?)", keyFile, err)
	}
	return k.PrivateKey, nil
}
