//! The raw `cluster:` section: a teaching cluster's name, its private LAN, its boards and
//! its compute nodes, from which the head's Slurm, DHCP/DNS and NFS configuration is
//! written (templates see it as `cluster`).

use super::merge_list::MergeList;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A cluster: one head node and compute nodes on a private Ethernet LAN.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Slurm's ClusterName, the head's host name and the nodes' name prefix (`minihpc`
    /// → nodes `minihpc01`, `minihpc02`, …): lower-case letters, digits and `-`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The cluster LAN (`192.168.5.0/24`): only the head and the nodes are on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The head's address on it (`192.168.5.101`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The first node's address (default: the head's plus one); nodes take the next
    /// addresses in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_node: Option<String>,
    /// Digits in a node's number (default 2: `minihpc01`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_digits: Option<u8>,
    /// The boards nodes are made of, by name, with what Slurm may hand out on each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boards: Option<IndexMap<String, Option<BoardSpec>>>,
    /// The compute nodes, in groups of one board, numbered in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<MergeList<NodeGroupSpec>>,
}

/// What one board offers jobs.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardSpec {
    /// Cores Slurm may allocate (Slurm's CPUs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Memory jobs may use (`3500MiB`, Slurm's RealMemory): a little less than the board
    /// has, so the system keeps its own.
    #[serde(
        default,
        deserialize_with = "super::size::de_size_text",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::size::SizeText>")]
    pub memory: Option<String>,
}

/// Nodes of one board.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeGroupSpec {
    /// A name under `boards`.
    pub board: String,
    pub count: u32,
    /// The nodes' Ethernet MAC addresses, in node order, where known: the head gives each
    /// its fixed address and name by MAC. A node whose MAC is not listed takes a free
    /// address of the group's and learns its name from the head's DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub macs: Vec<String>,
}
