//! Property test: an object rendered as template text parses back to the
//! same attributes, and no rendered line breaks the mail layer's rules.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use regmail::template::{
    ObjectClass, Transaction, key_rule, pairs, parse_object, render_body, render_object,
};

fn continuable(key: &str) -> bool {
    key_rule(ObjectClass::Person, Transaction::Perscreate, key).is_some_and(|r| r.continuable)
}

fn word() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.,@+/()-]{1,12}"
}

fn value(max_words: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..max_words).prop_map(|w| w.join(" "))
}

fn attr() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (Just("personname".to_string()), value(40)),
        (Just("street address".to_string()), value(30)),
        (Just("remarks".to_string()), value(50)),
        (Just("city".to_string()), value(4)),
        (Just("phone".to_string()), "\\+[1-9][0-9]{5,16}"),
        (Just("e-mail".to_string()), "[a-z]{1,10}@[a-z]{1,10}\\.at"),
    ]
}

proptest! {
    #[test]
    fn render_then_parse_is_identity(body in prop::collection::vec(attr(), 0..12)) {
        let mut attrs: Vec<(String, String)> = vec![
            ("nic-hdl".into(), "AUTO".into()),
            ("command".into(), "create".into()),
        ];
        attrs.extend(body);
        attrs.push(("source".into(), "AT-DOM".into()));
        let refs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let text = render_body(&render_object(&refs, continuable, 78));
        for line in text.lines() {
            prop_assert!(line.len() <= 78 && !line.ends_with(' ') && !line.contains('\t'), "{line:?}");
        }
        let (obj, errors) = parse_object(&text);
        prop_assert!(errors.is_empty(), "{errors:?}\n{text}");
        prop_assert_eq!(pairs(&obj.unwrap().attrs), attrs);
    }
}
