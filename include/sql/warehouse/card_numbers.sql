-- The card-number detector and masker (CONTRACT 7) in SQL: has_card_number(text) and
-- mask_card_numbers(text). Both are defined once, in plugins/auto_refunds/card_numbers.py (its
-- docstring states the definition); card_numbers.register puts them on the connection as the
-- functions these macros call, before this file runs.
--
-- Nearly every text holds no 13 digits in a row (single separators allowed) and costs one
-- regexp_matches (about 0.5 us a line); only the rest call into Python. The macros are temporary:
-- the warehouse file never depends on a function that only a run's process has, so anyone can
-- open it without this package. (Written in SQL, the detector cost about 0.3 s of binding in
-- every statement that used it; docs/design.md, "Card numbers".)

-- card_numbers.MAYBE_A_CARD_NUMBER, the guard Python applies first too: a text it rejects
-- holds no card number. tests/test_card_numbers.py would see a stricter guard miss one.
create or replace temp macro may_hold_card_number(txt) as
    regexp_matches(txt, '[0-9]([ -]?[0-9]){12}');

create or replace temp macro has_card_number(txt) as
    case
        when may_hold_card_number(txt) then card_number_in_text(txt)
        else false
    end;

create or replace temp macro mask_card_numbers(txt) as
    case
        when may_hold_card_number(txt) then card_numbers_masked(txt)
        else txt
    end;

-- txt as it is where kept is true, masked elsewhere: the fields of a quarantined line.
create or replace temp macro mask_card_numbers_unless(kept, txt) as
    case when kept then txt else mask_card_numbers(txt) end;
