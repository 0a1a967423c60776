// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

interface ITrueGPUFeed {
    function latestEpoch() external view returns (uint64);
    function requireScore(address node, uint256 score, uint8 status, bytes32[] calldata proof, uint256 maxAge)
        external
        view
        returns (uint64);
}

/// @title Example reward pool paying pro rata by verified TrueGPU score
/// @notice Each epoch pays a fixed budget. While epoch E is the feed's latest,
/// nodes (or anyone on their behalf) record their score with a Merkle proof
/// against a fresh report; once a newer report arrives, epoch E closes and
/// every recorded node can claim budget * score / totalRecordedScore.
/// Only probation (1) and trusted (2) nodes earn; suspect, rejected and
/// unknown nodes record nothing. Payouts go to the node address.
/// @dev An example, not audited: no admin, no budget top-up accounting.
contract RewardPool {
    ITrueGPUFeed public immutable feed;
    uint256 public immutable epochBudget;
    uint256 public immutable maxAge;

    mapping(uint64 => uint256) public totalScore;
    mapping(uint64 => mapping(address => uint256)) public scoreOf;
    mapping(uint64 => mapping(address => bool)) public claimed;

    event Recorded(uint64 indexed epoch, address indexed node, uint256 score);
    event Claimed(uint64 indexed epoch, address indexed node, uint256 amount);

    error NotEligible(uint8 status);
    error AlreadyRecorded(uint64 epoch, address node);
    error EpochNotClosed(uint64 epoch);
    error NothingToClaim(uint64 epoch, address node);
    error TransferFailed(address node);

    constructor(ITrueGPUFeed feed_, uint256 epochBudget_, uint256 maxAge_) {
        feed = feed_;
        epochBudget = epochBudget_;
        maxAge = maxAge_;
    }

    receive() external payable {}

    /// @notice Records node's verified score for the feed's current epoch.
    function record(address node, uint256 score, uint8 status, bytes32[] calldata proof) external {
        if (status != 1 && status != 2) revert NotEligible(status);
        uint64 epoch = feed.requireScore(node, score, status, proof, maxAge);
        if (scoreOf[epoch][node] != 0) revert AlreadyRecorded(epoch, node);
        if (score == 0) revert NotEligible(status);
        scoreOf[epoch][node] = score;
        totalScore[epoch] += score;
        emit Recorded(epoch, node, score);
    }

    /// @notice Pays node its share of a closed epoch's budget.
    function claim(uint64 epoch, address node) external {
        if (epoch >= feed.latestEpoch()) revert EpochNotClosed(epoch);
        uint256 score = scoreOf[epoch][node];
        if (score == 0 || claimed[epoch][node]) revert NothingToClaim(epoch, node);
        claimed[epoch][node] = true;
        uint256 amount = epochBudget * score / totalScore[epoch];
        emit Claimed(epoch, node, amount);
        (bool ok,) = node.call{value: amount}("");
        if (!ok) revert TransferFailed(node);
    }
}
