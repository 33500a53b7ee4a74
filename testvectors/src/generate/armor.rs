//! ASCII armor (SPEC 10).

use super::*;

impl Gen {
    /// ASCII armor.
    pub(super) fn armor(&mut self) {
        let k = self.k.clone();
        let a = &k.alice;
        let af = Expect::ArmorFailure;
        let mut rng = seeded("armor");
        // 158 + 56 + 516 = 730 bytes: 15 full lines and one of 10 bytes.
        let p = plan(&mut rng, &[(a, Hint::Real)], None, 500);
        let file = p.bytes();
        assert_eq!(file.len(), 730);
        let lines = armor_lines(&file);
        let lf = armor_text(&lines, "\n");
        // The reference armor writer produces exactly this.
        let mut w = kapsel_codec::ArmoredWriter::new(Vec::new()).expect("armor");
        w.write_all(&file).expect("armor");
        assert_eq!(w.finish().expect("armor"), lf);
        let ok = |name: &'static str, comment: &'static str, data: Vec<u8>| (name, comment, data);
        let succ = vec![
            ok("armor_valid", "armored file, LF line endings", lf.clone()),
            ok(
                "armor_crlf",
                "armored file, CRLF on every line",
                armor_text(&lines, "\r\n"),
            ),
            ok(
                "armor_whitespace_around",
                "spaces, tabs, CR and LF before BEGIN and after END",
                [b" \t\r\n\n".to_vec(), lf.clone(), b"\n \t\r\n".to_vec()].concat(),
            ),
            ok(
                "armor_crlf_whitespace_around",
                "CRLF armor with blank lines before and after",
                [
                    b"\r\n\r\n".to_vec(),
                    armor_text(&lines, "\r\n"),
                    b"\r\n".to_vec(),
                ]
                .concat(),
            ),
        ];
        for (name, comment, data) in succ {
            self.add(
                V::new(name, Expect::Success, comment, data)
                    .ids(&[a])
                    .plan(&p)
                    .released(&p.pt)
                    .armored(),
            );
        }
        // A file whose length is a multiple of 48: the last line is full.
        let mut rng = seeded("armor_last_line_full");
        let p48 = plan(&mut rng, &[(a, Hint::Real)], None, 58);
        let f48 = p48.bytes();
        assert_eq!(f48.len() % 48, 0);
        self.add(
            V::new(
                "armor_last_line_full",
                Expect::Success,
                "a 288-byte file: every body line has 64 characters",
                armor_text(&armor_lines(&f48), "\n"),
            )
            .ids(&[a])
            .plan(&p48)
            .released(&p48.pt)
            .armored(),
        );
        let mut rng = seeded("armor_signed");
        let ps = plan(&mut rng, &[(a, Hint::Real)], Some(&k.sam), 400);
        self.add(
            V::new(
                "armor_signed",
                Expect::Success,
                "an armored signed file",
                armor_text(&armor_lines(&ps.bytes()), "\n"),
            )
            .ids(&[a])
            .plan(&ps)
            .released(&ps.pt)
            .armored(),
        );
        // Valid armor around a bad file: the armor is transparent.
        self.add(
            V::new(
                "armor_inner_header_auth_failure",
                Expect::HeaderAuthFailure,
                "valid armor around a file with a flipped serial bit",
                armor_text(&armor_lines(&flip(file.clone(), 30, 0)), "\n"),
            )
            .ids(&[a])
            .plan(&p)
            .armored(),
        );
        self.add(
            V::new(
                "armor_inner_payload_truncated",
                Expect::PayloadFailure,
                "valid armor around a file missing its last 5 bytes",
                armor_text(&armor_lines(&file[..file.len() - 5]), "\n"),
            )
            .ids(&[a])
            .plan(&p)
            .armored(),
        );
        self.add(
            V::new(
                "armor_inner_not_kapsel",
                Expect::NotKapsel,
                "valid armor around a PNG file",
                armor_text(
                    &armor_lines(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01"),
                    "\n",
                ),
            )
            .ids(&[a])
            .armored(),
        );
        self.add(
            V::new(
                "armor_unflagged",
                Expect::NotKapsel,
                "armored text given to a binary decoder (armor: no)",
                lf.clone(),
            )
            .ids(&[a])
            .plan(&p),
        );
        // Armor failures. Every body line that decodes yields the true bytes
        // of a valid single-chunk file, so the failure is met before the
        // final chunk opens, whether a decoder streams the armor or not.
        let text = String::from_utf8(lf.clone()).expect("ASCII");
        let tl: Vec<String> = text.lines().map(str::to_string).collect();
        // tl[0] is BEGIN, tl[1..=16] the body, tl[17] END.
        assert_eq!(tl.len(), 18);
        let join = |ls: &[String]| {
            let mut s = ls.join("\n");
            s.push('\n');
            s.into_bytes()
        };
        let edit_line = |i: usize, f: &dyn Fn(&str) -> String| {
            let mut ls = tl.clone();
            ls[i] = f(&ls[i]);
            join(&ls)
        };
        let last_body = 16;
        let last = tl[last_body].clone();
        assert!(
            last.ends_with("=="),
            "the last line of a 730-byte file has two padding characters"
        );
        let nonzero_bits = {
            // "xy==": y carries 4 padding bits that must be zero.
            let mut chars: Vec<char> = last.chars().collect();
            let n = chars.len();
            let y = chars[n - 3];
            let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let pos = alphabet.find(y).expect("base64 char");
            chars[n - 3] = alphabet.as_bytes()[pos | 1] as char;
            chars.into_iter().collect::<String>()
        };
        let url_line = (1..=15)
            .find(|&i| tl[i].contains('+') || tl[i].contains('/'))
            .expect("a line with + or /");
        let rewrapped = {
            let body: String = tl[1..=last_body].concat();
            let mut ls = vec![tl[0].clone()];
            let chars: Vec<char> = body.chars().collect();
            for c in chars.chunks(76) {
                ls.push(c.iter().collect());
            }
            ls.push(tl[17].clone());
            join(&ls)
        };
        let mut crlf_end_lf = String::from_utf8(armor_text(&lines, "\r\n")).expect("ASCII");
        crlf_end_lf.truncate(crlf_end_lf.len() - 2);
        crlf_end_lf.push('\n');
        let fails: Vec<(&str, &str, Vec<u8>)> = vec![
            (
                "armor_mixed_endings",
                "CRLF after BEGIN, LF on every other line",
                {
                    let mut s = lf.clone();
                    s.splice(BEGIN.len()..BEGIN.len(), [b'\r']);
                    s
                },
            ),
            (
                "armor_crlf_but_end_lf",
                "CRLF on every line but the END line",
                crlf_end_lf.into_bytes(),
            ),
            (
                "armor_lone_cr",
                "a CR inside body line 2",
                edit_line(2, &|l| format!("{}\r{}", &l[..30], &l[30..])),
            ),
            ("armor_line_76", "the body wrapped at 76 columns", rewrapped),
            (
                "armor_line_65",
                "body line 2 has 65 characters (the first character of line 3 moved up)",
                {
                    let mut ls = tl.clone();
                    let c = ls[3].remove(0);
                    ls[2].push(c);
                    join(&ls)
                },
            ),
            (
                "armor_short_line_in_middle",
                "body line 2 cut to 60 characters",
                edit_line(2, &|l| l[..60].to_string()),
            ),
            (
                "armor_empty_line_in_body",
                "an empty line between body lines 2 and 3",
                {
                    let mut ls = tl.clone();
                    ls.insert(3, String::new());
                    join(&ls)
                },
            ),
            (
                "armor_empty_line_after_begin",
                "an empty line right after BEGIN",
                {
                    let mut ls = tl.clone();
                    ls.insert(1, String::new());
                    join(&ls)
                },
            ),
            (
                "armor_no_body",
                "BEGIN and END lines only",
                join(&[tl[0].clone(), tl[17].clone()]),
            ),
            ("armor_missing_end", "no END line", join(&tl[..17])),
            (
                "armor_end_without_newline",
                "the END line without its line feed",
                {
                    let mut v = lf.clone();
                    v.pop();
                    v
                },
            ),
            (
                "armor_garbage_before",
                "text before the BEGIN line",
                [b"Here is the file:\n".to_vec(), lf.clone()].concat(),
            ),
            (
                "armor_garbage_after",
                "text after the END line",
                [lf.clone(), b"-- \nsent from my phone\n".to_vec()].concat(),
            ),
            (
                "armor_nul_after",
                "a NUL byte after the END line",
                [lf.clone(), vec![0]].concat(),
            ),
            (
                "armor_second_armor_after",
                "the same armor twice",
                [lf.clone(), lf.clone()].concat(),
            ),
            (
                "armor_nonzero_padding_bits",
                "the last line's padding bits are not zero (non-canonical)",
                edit_line(last_body, &|_| nonzero_bits.clone()),
            ),
            (
                "armor_padding_missing",
                "the last line without its '=' padding",
                edit_line(last_body, &|l| l.trim_end_matches('=').to_string()),
            ),
            (
                "armor_extra_padding",
                "a line '====' after the last body line",
                {
                    let mut ls = tl.clone();
                    ls.insert(17, "====".to_string());
                    join(&ls)
                },
            ),
            (
                "armor_padding_in_middle",
                "body line 2 ends in '==' (padding before the last line)",
                edit_line(2, &|l| format!("{}==", &l[..62])),
            ),
            (
                "armor_invalid_character",
                "a '*' in body line 2",
                edit_line(2, &|l| format!("{}*{}", &l[..10], &l[11..])),
            ),
            (
                "armor_url_safe_alphabet",
                "'+' and '/' of a body line written as '-' and '_'",
                edit_line(url_line, &|l| l.replace('+', "-").replace('/', "_")),
            ),
            (
                "armor_space_in_line",
                "a space inside body line 2 (replacing a character)",
                edit_line(2, &|l| format!("{} {}", &l[..10], &l[11..])),
            ),
            (
                "armor_trailing_space_on_line",
                "a space after body line 2",
                edit_line(2, &|l| format!("{l} ")),
            ),
            (
                "armor_indented_line",
                "a tab before body line 2",
                edit_line(2, &|l| format!("\t{l}")),
            ),
            (
                "armor_non_ascii_byte",
                "a 0xff byte in place of a character of body line 2",
                {
                    let mut v = lf.clone();
                    let at = tl[0].len() + 1 + tl[1].len() + 1 + 5;
                    v[at] = 0xff;
                    v
                },
            ),
            (
                "armor_begin_lowercase",
                "BEGIN line in lower case",
                edit_line(0, &|l| l.to_lowercase()),
            ),
            (
                "armor_begin_trailing_space",
                "a space after the BEGIN line's dashes",
                edit_line(0, &|l| format!("{l} ")),
            ),
            (
                "armor_begin_other_label",
                "BEGIN AGE ENCRYPTED FILE",
                edit_line(0, &|_| "-----BEGIN AGE ENCRYPTED FILE-----".to_string()),
            ),
            (
                "armor_end_other_label",
                "END line with another label",
                edit_line(17, &|_| "-----END KAPSEL FILE-----".to_string()),
            ),
            (
                "armor_whitespace_only",
                "only white space",
                b" \n\t\r\n".to_vec(),
            ),
            ("armor_empty", "empty input", Vec::new()),
        ];
        for (name, comment, data) in fails {
            self.add(V::new(name, af, comment, data).ids(&[a]).plan(&p).armored());
        }
    }
}
