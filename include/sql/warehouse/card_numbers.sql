-- The card-number detector and masker (CONTRACT 7): has_card_number(text) and
-- mask_card_numbers(text). The Python twin is plugins/auto_refunds/card_numbers.py, whose
-- docstring states the definition; tests/test_card_numbers.py checks both agree.
--
-- A word is a maximal run of ASCII letters and digits; a chain is words joined by single
-- spaces or dashes. A card number is one or more consecutive all-digit words of a chain,
-- 13 to 19 digits together, passing Luhn. RE2 has no lookaround, so "standing alone" comes
-- from cutting the text into chains and chains into words, never from the regex itself.
-- Every step is guarded by a cheap regex (13 digits, single separators allowed): nearly every
-- line has no such run and costs one regexp_matches (about 0.5 us a line on this machine).
-- Binding the macros costs about 0.3 s per statement: use them over a table, not row by row.
--
-- `list_transform([x], lambda v: ...)[1]` evaluates x once and names it v (a macro argument
-- is otherwise copied, and computed again, wherever it is used).

create or replace macro card_number_luhn_ok(digits) as
    list_sum(list_transform(
        string_split(reverse(digits), ''),
        lambda cn_d, cn_pos: case
            when cn_pos % 2 = 0 then [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][ascii(cn_d) - 47]
            else ascii(cn_d) - 48
        end
    )) % 10 = 0;

-- {i, j}: the first and last word (1-based) of every card number among a chain's words.
create or replace macro card_number_spans(words) as
    list_transform([words], lambda cn_words: flatten(list_transform(
        range(1, len(cn_words) + 1),
        lambda cn_i: list_filter(
            list_transform(
                range(cn_i, least(len(cn_words), cn_i + 18) + 1),
                lambda cn_j: {
                    'i': cn_i,
                    'j': cn_j,
                    'ok': case
                        when list_bool_and(list_transform(
                            cn_words[cn_i:cn_j], lambda cn_w: regexp_full_match(cn_w, '[0-9]+')
                        ))
                        and length(array_to_string(cn_words[cn_i:cn_j], '')) between 13 and 19
                            then card_number_luhn_ok(array_to_string(cn_words[cn_i:cn_j], ''))
                        else false
                    end
                }
            ),
            lambda cn_s: cn_s.ok
        )
    )))[1];

-- Whether each word of a chain belongs to a card number.
create or replace macro card_number_covered(words) as
    list_transform(
        [{'n': len(words), 'spans': card_number_spans(words)}],
        lambda cn_v: list_transform(
            range(1, cn_v.n + 1),
            lambda cn_k: len(list_filter(
                cn_v.spans, lambda cn_s: cn_s.i <= cn_k and cn_k <= cn_s.j
            )) > 0
        )
    )[1];

-- One chain, masked: a region of covered words becomes one '*' per digit but its last four
-- (separators inside dropped); the last four are masked too when a separator and digits follow.
create or replace macro mask_card_number_chain(chain) as
    list_transform([chain], lambda cn_chain: case
        when not regexp_matches(cn_chain, '[0-9]([ -]?[0-9]){12}') then cn_chain
        else list_transform(
            [{
                'w': regexp_split_to_array(cn_chain, '[ -]'),
                's': regexp_extract_all(cn_chain, '[ -]'),
                'cov': card_number_covered(regexp_split_to_array(cn_chain, '[ -]'))
            }],
            lambda cn_c: array_to_string(list_transform(
                range(1, len(cn_c.w) + 1),
                lambda cn_k: case
                    when cn_k = 1 or (cn_c.cov[cn_k] and cn_c.cov[cn_k - 1]) then ''
                    else cn_c.s[cn_k - 1]
                end || case
                    when not cn_c.cov[cn_k] then cn_c.w[cn_k]
                    -- cn_e: the last word of the region; cn_after: its digits after this word.
                    else list_transform(
                        [{
                            'e': cn_k - 1 + coalesce(
                                list_position(cn_c.cov[cn_k + 1:], false), len(cn_c.w) - cn_k + 1
                            )
                        }],
                        lambda cn_r: list_transform(
                            [{
                                'keep': cn_r.e = len(cn_c.w)
                                or not regexp_full_match(cn_c.w[cn_r.e + 1], '[0-9]+'),
                                'after': coalesce(list_sum(list_transform(
                                    cn_c.w[cn_k + 1:cn_r.e], lambda cn_x: length(cn_x)
                                )), 0)
                            }],
                            lambda cn_m: array_to_string(list_transform(
                                string_split(cn_c.w[cn_k], ''),
                                lambda cn_ch, cn_p: case
                                    when cn_m.keep
                                    and length(cn_c.w[cn_k]) - cn_p + cn_m.after < 4 then cn_ch
                                    else '*'
                                end
                            ), '')
                        )[1]
                    )[1]
                end
            ), '')
        )[1]
    end)[1];

create or replace macro has_card_number(txt) as
    case
        when txt is null or not regexp_matches(txt, '[0-9]([ -]?[0-9]){12}') then false
        else coalesce(list_bool_or(list_transform(
            regexp_extract_all(txt, '[0-9A-Za-z]+(?:[ -][0-9A-Za-z]+)*'),
            lambda cn_chain: regexp_matches(cn_chain, '[0-9]([ -]?[0-9]){12}')
            and len(card_number_spans(regexp_split_to_array(cn_chain, '[ -]'))) > 0
        )), false)
    end;

-- The text between chains is kept; each chain is masked.
create or replace macro mask_card_numbers(txt) as
    case
        when txt is null or not regexp_matches(txt, '[0-9]([ -]?[0-9]){12}') then txt
        else list_transform(
            [regexp_extract_all(txt, '[0-9A-Za-z]+(?:[ -][0-9A-Za-z]+)*')],
            lambda cn_chains: array_to_string(list_transform(
                regexp_split_to_array(txt, '[0-9A-Za-z]+(?:[ -][0-9A-Za-z]+)*'),
                lambda cn_gap, cn_gap_no: case
                    when cn_gap_no = 1 then cn_gap
                    else mask_card_number_chain(cn_chains[cn_gap_no - 1]) || cn_gap
                end
            ), '')
        )[1]
    end;
