//! `hash64(a, b, ...)`: a 64-bit hash of its arguments, row by row (NULL hashes as a value of its
//! own), with DataFusion's own vectorised hashing and a fixed seed.
//!
//! A `GROUP BY` of millions of audit IDs spends its time hashing and comparing 36-byte strings in
//! a hash table of strings; grouping their 64-bit hashes instead, then checking the few
//! candidates exactly, took `audit_id_reuse` from 2.9 s to 2.05 s in a report over 10M events.
//! The hash is not cryptographic and two values may share one: use it to find candidates, never
//! as the answer.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, UInt64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Hash64 {
    signature: Signature,
}

/// The `hash64` function.
pub(crate) fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(Hash64 {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for Hash64 {
    fn name(&self) -> &str {
        "hash64"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("hash64 needs at least one argument");
        }
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let mut hashes = vec![0u64; rows];
        create_hashes(&arrays, &RandomState::with_seed(0), &mut hashes)?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(hashes))))
    }
}
