//! THE definition of Firebreak's DynamoDB table: [`table_spec`] is plain data that
//! [`create_table`] (tests, the CLI's bootstrap) builds from and that the SAM template is checked
//! against (`tests/tests/template.rs`). docs/storage.md explains every item and index.

use crate::error::{build_error, port_error};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use firebreak_core::ports::PortError;
use std::time::Duration;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// Active incidents: `gsi1pk = "ACTIVE"` (set only while the incident is not resolved, so the
/// index is sparse), `gsi1sk = <opened_at>#<id>`.
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
/// Incidents by month opened: `gsi2pk = "MONTH#yyyy-mm"`, `gsi2sk = <opened_at>#<id>`.
pub const GSI2: &str = "gsi2";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
/// Epoch seconds after which DynamoDB may delete the item (leases).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// A DynamoDB scalar attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    S,
    N,
    B,
}

impl AttrType {
    /// The CloudFormation / API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::S => "S",
            AttrType::N => "N",
            AttrType::B => "B",
        }
    }
}

/// A key attribute: name and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAttr {
    pub name: &'static str,
    pub kind: AttrType,
}

/// Which attributes an index copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexProjection {
    All,
    KeysOnly,
}

impl IndexProjection {
    pub fn as_str(self) -> &'static str {
        match self {
            IndexProjection::All => "ALL",
            IndexProjection::KeysOnly => "KEYS_ONLY",
        }
    }
}

/// A global secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub partition_key: KeyAttr,
    pub sort_key: KeyAttr,
    pub projection: IndexProjection,
}

/// The table, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    pub partition_key: KeyAttr,
    pub sort_key: KeyAttr,
    pub indexes: Vec<IndexSpec>,
    pub ttl_attribute: &'static str,
    /// `PAY_PER_REQUEST`.
    pub billing_mode: &'static str,
}

impl TableSpec {
    /// Every key attribute of the table and its indexes, once each, table keys first: what
    /// `AttributeDefinitions` must list (no more, no less).
    pub fn attribute_definitions(&self) -> Vec<KeyAttr> {
        let mut out: Vec<KeyAttr> = Vec::new();
        let keys = [self.partition_key, self.sort_key]
            .into_iter()
            .chain(self.indexes.iter().flat_map(|i| [i.partition_key, i.sort_key]));
        for k in keys {
            if !out.iter().any(|o| o.name == k.name) {
                out.push(k);
            }
        }
        out
    }
}

const fn s(name: &'static str) -> KeyAttr {
    KeyAttr {
        name,
        kind: AttrType::S,
    }
}

/// The table Firebreak stores incidents, timelines, open pointers and leases in.
pub fn table_spec() -> TableSpec {
    TableSpec {
        partition_key: s(PK),
        sort_key: s(SK),
        indexes: vec![
            IndexSpec {
                name: GSI1,
                partition_key: s(GSI1_PK),
                sort_key: s(GSI1_SK),
                projection: IndexProjection::All,
            },
            IndexSpec {
                name: GSI2,
                partition_key: s(GSI2_PK),
                sort_key: s(GSI2_SK),
                projection: IndexProjection::All,
            },
        ],
        ttl_attribute: TTL_ATTRIBUTE,
        billing_mode: "PAY_PER_REQUEST",
    }
}

fn scalar(kind: AttrType) -> ScalarAttributeType {
    match kind {
        AttrType::S => ScalarAttributeType::S,
        AttrType::N => ScalarAttributeType::N,
        AttrType::B => ScalarAttributeType::B,
    }
}

fn key_schema(op: &str, pk: KeyAttr, sk: KeyAttr) -> Result<Vec<KeySchemaElement>, PortError> {
    [(pk, KeyType::Hash), (sk, KeyType::Range)]
        .into_iter()
        .map(|(k, t)| {
            KeySchemaElement::builder()
                .attribute_name(k.name)
                .key_type(t)
                .build()
                .map_err(|e| build_error(op, &e))
        })
        .collect()
}

/// Creates the table named `name` from [`table_spec`], waits until it is ACTIVE and enables TTL.
/// PITR and encryption are the deployment's business (the SAM template); this is for tests and
/// local bootstrap.
///
/// # Errors
/// The CreateTable / DescribeTable / UpdateTimeToLive failure, or a non-retryable `Timeout` when
/// the table is not ACTIVE within two minutes.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), PortError> {
    const OP: &str = "DynamoDB CreateTable";
    let spec = table_spec();
    let mut req = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_schema(OP, spec.partition_key, spec.sort_key)?));
    for a in spec.attribute_definitions() {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a.name)
                .attribute_type(scalar(a.kind))
                .build()
                .map_err(|e| build_error(OP, &e))?,
        );
    }
    for i in &spec.indexes {
        let projection = match i.projection {
            IndexProjection::All => ProjectionType::All,
            IndexProjection::KeysOnly => ProjectionType::KeysOnly,
        };
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(i.name)
                .set_key_schema(Some(key_schema(OP, i.partition_key, i.sort_key)?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|e| build_error(OP, &e))?,
        );
    }
    req.send().await.map_err(|e| port_error(OP, &e))?;

    let mut waited = Duration::ZERO;
    loop {
        let out = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| port_error("DynamoDB DescribeTable", &e))?;
        let active = out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active);
        if active {
            break;
        }
        if waited >= Duration::from_secs(120) {
            return Err(PortError::new(
                "DynamoDB DescribeTable",
                format!("table {name} is not ACTIVE after {}s", waited.as_secs()),
                false,
            )
            .with_code("Timeout"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        waited += Duration::from_millis(500);
    }

    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(spec.ttl_attribute)
                .enabled(true)
                .build()
                .map_err(|e| build_error("DynamoDB UpdateTimeToLive", &e))?,
        )
        .send()
        .await
        .map_err(|e| port_error("DynamoDB UpdateTimeToLive", &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_definitions_list_each_key_once() {
        let names: Vec<&str> = table_spec()
            .attribute_definitions()
            .iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, vec!["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"]);
    }
}
