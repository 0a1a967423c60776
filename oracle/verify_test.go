package oracle

import "github.com/truegpu/truegpu/reputation"

var reputationVerify = reputation.VerifySignatures
