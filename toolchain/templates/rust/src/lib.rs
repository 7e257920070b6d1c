//! A Tributary transform: upper-cases the text field named by `field`.
//! Build: cargo build --release --target wasm32-wasip2

use tributary_transform_sdk::{Batch, Config, Output, Transform, Value};

struct Shout {
    field: String,
}

impl Transform for Shout {
    fn init(config: Config) -> Result<Self, String> {
        config.only(&["field"])?;
        let field = config
            .require("field")
            .map_err(|_| "config needs `field`, the text field to upper-case".to_string())?;
        Ok(Shout {
            field: field.to_string(),
        })
    }

    /// Only this field crosses into the sandbox.
    fn fields(&self) -> Option<Vec<String>> {
        Some(vec![self.field.clone()])
    }

    fn process(&mut self, batch: &Batch, out: &mut Output) -> Result<(), String> {
        let column = batch.column(&self.field)?;
        out.reserve(batch.len());
        for row in batch.rows() {
            match row.text(column) {
                Some(text) => out.update(
                    row.index(),
                    [(self.field.as_str(), Value::Text(text.to_uppercase()))],
                ),
                None => out.keep(row.index()),
            }
        }
        Ok(())
    }
}

tributary_transform_sdk::export_transform!(Shout);
