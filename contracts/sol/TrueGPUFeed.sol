// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title TrueGPU epoch feed
/// @notice Accepts TrueGPU epoch reports signed by k of the n oracle members
/// (EIP-712, ecrecover), keeps the latest one, and verifies a node's
/// (score, status) against its Merkle root (OpenZeppelin StandardMerkleTree
/// layout: leaf = keccak256(bytes.concat(keccak256(abi.encode(address,
/// uint256, uint8)))), sorted-pair hashing). Reports carry a validity
/// window (validFrom..expiresAt, unix seconds) checked against
/// block.timestamp; a guardian may pause the feed; the current members
/// (k of n) may replace the configuration with updateConfig.
/// @dev Status values: 0 unknown, 1 probation, 2 trusted, 3 suspect,
/// 4 rejected. Scores are basis points, 0..10000.
contract TrueGPUFeed {
    struct Report {
        bytes32 configDigest;
        uint64 epoch;
        uint64 round;
        uint64 timestamp;
        bytes32 root;
        uint64 count;
        uint64 validFrom;
        uint64 expiresAt;
    }

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "EpochReport(bytes32 configDigest,uint64 epoch,uint64 round,uint64 timestamp,bytes32 root,uint64 count,uint64 validFrom,uint64 expiresAt)"
    );
    bytes32 public constant CONFIG_UPDATE_TYPEHASH =
        keccak256("ConfigUpdate(bytes32 previousConfigDigest,bytes32 newConfigDigest,uint64 version)");
    bytes32 private constant NAME_HASH = keccak256("TrueGPU Epoch Feed");
    bytes32 private constant VERSION_HASH = keccak256("1");
    /// @dev Half the secp256k1 group order: signatures with a larger s are
    /// malleable copies and are refused (EIP-2).
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// @notice keccak256(abi.encode(address[] members, uint256 threshold,
    /// bytes32 paramsDigest)), members ascending: what reports must carry.
    bytes32 public configDigest;
    uint256 public threshold;
    uint256 public memberCount;
    /// @notice Configuration version: 1 after deployment, one more after
    /// each updateConfig.
    uint64 public configVersion;
    /// @dev The current members, ascending.
    address[] private members_;
    /// @dev 1-based member index; 0 means not a member.
    mapping(address => uint256) private memberIndex;

    /// @notice Who may pause and unpause the feed (the deployer at first;
    /// zero once renounced).
    address public guardian;
    /// @notice While true, submit and requireScore revert with FeedPaused.
    bool public paused;

    Report private latest;
    /// @notice block.timestamp when the latest report was accepted.
    uint256 public acceptedAt;

    event ReportAccepted(uint64 indexed epoch, uint64 round, uint64 timestamp, bytes32 root, uint64 count);
    event ConfigUpdated(
        uint64 indexed version, bytes32 previousConfigDigest, bytes32 configDigest, address[] members, uint256 threshold
    );
    event PausedSet(bool paused, address by);
    event GuardianChanged(address previous, address guardian);

    error InvalidConfig();
    error WrongConfigDigest(bytes32 got, bytes32 want);
    error StaleEpoch(uint64 got, uint64 latest);
    error TooFewSignatures(uint256 got, uint256 want);
    error InvalidSignature(uint256 index);
    error NotMember(uint256 index, address signer);
    error DuplicateSigner(uint256 index, address signer);
    error NoReport();
    error ReportTooOld(uint64 timestamp, uint256 maxAge);
    error InvalidProof(address node);
    error InvalidWindow(uint64 validFrom, uint64 expiresAt);
    error ReportNotYetValid(uint64 validFrom, uint256 now);
    error ReportExpired(uint64 expiresAt, uint256 now);
    error FeedPaused();
    error NotGuardian(address caller);

    /// @param members oracle member addresses, strictly ascending (at most 256).
    /// @param threshold_ signatures needed, 1 <= threshold_ <= members.length.
    /// @param paramsDigest digest of the reputation model's parameters.
    /// @dev The deployer becomes the guardian.
    constructor(address[] memory members, uint256 threshold_, bytes32 paramsDigest) {
        _setConfig(members, threshold_, paramsDigest);
        guardian = msg.sender;
        emit GuardianChanged(address(0), msg.sender);
    }

    function _setConfig(address[] memory members, uint256 threshold_, bytes32 paramsDigest) private {
        if (members.length == 0 || members.length > 256 || threshold_ == 0 || threshold_ > members.length) {
            revert InvalidConfig();
        }
        for (uint256 i = 0; i < members_.length; i++) {
            delete memberIndex[members_[i]];
        }
        address prev = address(0);
        for (uint256 i = 0; i < members.length; i++) {
            if (members[i] <= prev) revert InvalidConfig(); // ascending, unique, non-zero
            prev = members[i];
            memberIndex[members[i]] = i + 1;
        }
        members_ = members;
        threshold = threshold_;
        memberCount = members.length;
        bytes32 previous = configDigest;
        configDigest = keccak256(abi.encode(members, threshold_, paramsDigest));
        configVersion++;
        emit ConfigUpdated(configVersion, previous, configDigest, members, threshold_);
    }

    /// @notice The current members, ascending.
    function getMembers() external view returns (address[] memory) {
        return members_;
    }

    /// @notice The EIP-712 domain separator (chain id and this address).
    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, block.chainid, address(this)));
    }

    /// @notice The EIP-712 digest members sign for report r.
    function reportDigest(Report calldata r) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                REPORT_TYPEHASH, r.configDigest, r.epoch, r.round, r.timestamp, r.root, r.count, r.validFrom, r.expiresAt
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice The EIP-712 digest the current members sign to replace the
    /// configuration by the one whose digest is newConfigDigest.
    function configUpdateDigest(bytes32 newConfigDigest) public view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(CONFIG_UPDATE_TYPEHASH, configDigest, newConfigDigest, configVersion + 1));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// @notice Accepts r if the feed is not paused, r carries this feed's
    /// config digest, a strictly newer epoch, a validity window that holds
    /// block.timestamp, and signatures (65 bytes r||s||v each) of at least
    /// threshold distinct members. Any bad, non-member or repeated
    /// signature rejects the whole submission.
    function submit(Report calldata r, bytes[] calldata signatures) external {
        if (paused) revert FeedPaused();
        if (r.configDigest != configDigest) revert WrongConfigDigest(r.configDigest, configDigest);
        if (r.epoch <= latest.epoch) revert StaleEpoch(r.epoch, latest.epoch);
        if (r.validFrom > r.expiresAt) revert InvalidWindow(r.validFrom, r.expiresAt);
        if (block.timestamp < r.validFrom) revert ReportNotYetValid(r.validFrom, block.timestamp);
        if (block.timestamp > r.expiresAt) revert ReportExpired(r.expiresAt, block.timestamp);
        _checkSignatures(reportDigest(r), signatures);
        latest = r;
        acceptedAt = block.timestamp;
        emit ReportAccepted(r.epoch, r.round, r.timestamp, r.root, r.count);
    }

    /// @notice Replaces the members, the threshold and the parameters
    /// without a redeploy. Needs signatures of configUpdateDigest(new
    /// digest) by at least threshold distinct current members (strict as in
    /// submit). Afterwards reports must carry the new config digest and the
    /// new members' signatures; reports of the old configuration revert
    /// with WrongConfigDigest. The latest report and its epoch stay. Allowed
    /// while paused.
    function updateConfig(
        address[] calldata newMembers,
        uint256 newThreshold,
        bytes32 paramsDigest,
        bytes[] calldata signatures
    ) external {
        _checkSignatures(configUpdateDigest(keccak256(abi.encode(newMembers, newThreshold, paramsDigest))), signatures);
        _setConfig(newMembers, newThreshold, paramsDigest);
    }

    /// @notice Pauses (true) or unpauses (false) the feed; guardian only.
    function setPaused(bool p) external {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        paused = p;
        emit PausedSet(p, msg.sender);
    }

    /// @notice Hands the guardian role to g (zero renounces it: the pause
    /// flag then stays as it is for good); guardian only.
    function setGuardian(address g) external {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        emit GuardianChanged(guardian, g);
        guardian = g;
    }

    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) private view {
        if (signatures.length < threshold) revert TooFewSignatures(signatures.length, threshold);
        uint256 seen; // bitmap over member indexes (<= 256 members)
        for (uint256 i = 0; i < signatures.length; i++) {
            address signer = _recover(digest, signatures[i], i);
            uint256 idx = memberIndex[signer];
            if (idx == 0) revert NotMember(i, signer);
            uint256 bit = 1 << (idx - 1);
            if (seen & bit != 0) revert DuplicateSigner(i, signer);
            seen |= bit;
        }
    }

    function _recover(bytes32 digest, bytes calldata sig, uint256 index) private pure returns (address) {
        if (sig.length != 65) revert InvalidSignature(index);
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := calldataload(sig.offset)
            s := calldataload(add(sig.offset, 32))
            v := byte(0, calldataload(add(sig.offset, 64)))
        }
        if (v < 27) v += 27;
        if ((v != 27 && v != 28) || uint256(s) > HALF_N) revert InvalidSignature(index);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature(index);
        return signer;
    }

    /// @notice The latest accepted report.
    function latestReport() external view returns (Report memory) {
        return latest;
    }

    /// @notice The latest accepted epoch (0 before the first report).
    function latestEpoch() external view returns (uint64) {
        return latest.epoch;
    }

    /// @notice Seconds since the latest report was closed by the oracle
    /// (its timestamp), against block.timestamp. Reverts without a report.
    function age() public view returns (uint256) {
        if (latest.epoch == 0) revert NoReport();
        if (block.timestamp <= latest.timestamp) return 0;
        return block.timestamp - latest.timestamp;
    }

    /// @notice Whether a report exists, is at most maxAge seconds old and
    /// has not expired (block.timestamp <= its expiresAt).
    function isFresh(uint256 maxAge) public view returns (bool) {
        return latest.epoch != 0 && age() <= maxAge && block.timestamp <= latest.expiresAt;
    }

    /// @notice Whether (node, score, status) is a leaf of the latest report.
    function verifyScore(address node, uint256 score, uint8 status, bytes32[] calldata proof)
        public
        view
        returns (bool)
    {
        if (latest.epoch == 0) return false;
        bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(node, score, status))));
        return _processProof(proof, leaf) == latest.root;
    }

    /// @notice For consumers: reverts unless the feed is not paused and the
    /// latest report is unexpired, at most maxAge seconds old and proves
    /// (node, score, status); returns the epoch.
    function requireScore(address node, uint256 score, uint8 status, bytes32[] calldata proof, uint256 maxAge)
        external
        view
        returns (uint64)
    {
        if (paused) revert FeedPaused();
        if (latest.epoch == 0) revert NoReport();
        if (block.timestamp > latest.expiresAt) revert ReportExpired(latest.expiresAt, block.timestamp);
        if (age() > maxAge) revert ReportTooOld(latest.timestamp, maxAge);
        if (!verifyScore(node, score, status, proof)) revert InvalidProof(node);
        return latest.epoch;
    }

    function _processProof(bytes32[] calldata proof, bytes32 leaf) private pure returns (bytes32 h) {
        h = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 p = proof[i];
            h = h < p ? keccak256(abi.encode(h, p)) : keccak256(abi.encode(p, h));
        }
    }
}
