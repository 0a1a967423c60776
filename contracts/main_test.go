package contracts

import (
	"os"
	"testing"

	"github.com/consensys/gnark/logger"
)

func TestMain(m *testing.M) {
	logger.Disable() // circuit compilation logs are noise in test output
	os.Exit(m.Run())
}
