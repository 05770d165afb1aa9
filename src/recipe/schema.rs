//! `imgbuild schema`: the recipe's JSON Schema, for editors. The model's types give most
//! of it; conditions (`when.rs`) are applied before the model sees a recipe, so they are
//! added here: every mapping below the top level may have `when`, and every list item
//! may be `{when, then: [items]}`. Templates are rendered first too, so a field with a
//! fixed set of values also takes a `{{ ... }}` template string.

use serde_json::{Value, json};

pub fn recipe() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(super::Recipe)).unwrap_or(Value::Null);
    add_conditions(&mut schema, true);
    schema
}

fn condition() -> Value {
    json!({
        "description": "Keep this part only when the condition renders `true` (`false` drops it); see README, Conditions.",
        "type": ["boolean", "string"]
    })
}

/// Adds the conditions to one schema node and everything below it.
fn add_conditions(node: &mut Value, top: bool) {
    let Some(o) = node.as_object_mut() else { return };
    for key in ["anyOf", "oneOf", "allOf", "prefixItems"] {
        for sub in o.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten() {
            add_conditions(sub, false);
        }
    }
    for key in ["properties", "$defs"] {
        for sub in o
            .get_mut(key)
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            add_conditions(sub, false);
        }
    }
    if let Some(extra) = o.get_mut("additionalProperties") {
        add_conditions(extra, false);
    }
    if let Some(items) = o.get_mut("items") {
        add_conditions(items, false);
        let item = items.clone();
        *items = json!({"anyOf": [item.clone(), {
            "type": "object",
            "properties": {"when": condition(), "then": {"type": "array", "items": item}},
            "required": ["when", "then"],
            "additionalProperties": false
        }]});
    }
    if o.contains_key("enum") || o.contains_key("oneOf") {
        let fixed = Value::Object(std::mem::take(o));
        *node = json!({"anyOf": [fixed, {"type": "string", "pattern": "\\{\\{"}]});
        return;
    }
    if !top && let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("when".into(), condition());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mappings_take_when_and_lists_take_when_then() {
        let s = super::recipe();
        assert!(s["properties"].get("when").is_none(), "the top level has no condition");
        let step = &s["$defs"]["StepSpec"]["properties"];
        assert_eq!(step["when"]["type"], serde_json::json!(["boolean", "string"]));
        let packages = serde_json::to_string(&s["$defs"]).unwrap();
        assert!(
            packages.contains("\"required\":[\"when\",\"then\"]"),
            "list items take when/then"
        );
        let compression = serde_json::to_string(&s["$defs"]["Compression"]).unwrap();
        assert!(compression.contains("\"pattern\":\"\\\\{\\\\{\""), "{compression}");
    }
}
