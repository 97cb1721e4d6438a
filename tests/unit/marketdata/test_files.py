"""Bar files: both headers, CSV and Parquet, and every validation rule naming line and column."""

from __future__ import annotations

import tempfile
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import barfiles
from shared.barfiles import BadZoneError, BarFileError, load_bar_file, time_zone

GENERIC = "timestamp,open,high,low,close,volume\n"
ROWS = [
    "2024-01-02T09:15:00Z,100,105,99,104,1000",
    "2024-01-02T09:16:00Z,104,106,103,105,1200",
    "2024-01-02T09:17:00Z,105,107,101,102,900",
]


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rejected(path: Path) -> BarFileError:
    with pytest.raises(BarFileError) as info:
        load_bar_file(path)
    return info.value


def test_generic_header_gives_utc_timestamps_and_floats(tmp_path: Path) -> None:
    frame = load_bar_file(write(tmp_path, GENERIC + "\n".join(ROWS) + "\n"))
    assert list(frame.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert len(frame) == 3
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["close"].tolist() == [104.0, 105.0, 102.0]


def test_yahoo_header_is_case_insensitive_and_extra_columns_are_ignored(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,100,105,99,104,103.5,1000\n"
    text += "2024-01-03,104,106,103,105,104.4,1200\n"
    frame = load_bar_file(write(tmp_path, text))
    assert frame["timestamp"].iloc[1] == pd.Timestamp("2024-01-03", tz="UTC")
    assert frame["volume"].tolist() == [1000.0, 1200.0]


def test_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    frame = load_bar_file(write(tmp_path, GENERIC + "2024-01-02T09:15:00+05:30,100,105,99,104,1000\n"))
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-02T03:45:00", tz="UTC")


def test_a_time_without_an_offset_is_utc_as_the_readme_says(tmp_path: Path) -> None:
    frame = load_bar_file(write(tmp_path, GENERIC + "2024-01-02 09:15:00,100,105,99,104,1000\n"))
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-01-02T09:15:00", tz="UTC")


# -- times without an offset: a wall time in the zone the command's --tz names --------------------------
IST = ZoneInfo("Asia/Kolkata")
LONDON = ZoneInfo("Europe/London")
#: Each form of timestamp text, and the instant it is when the zone is IST.
IST_FORMS = [
    ("2024-03-01", "2024-02-29T18:30:00Z"),  # a plain date: midnight IST
    ("2024-03-01 09:15:00", "2024-03-01T03:45:00Z"),
    ("2024-03-01T09:16", "2024-03-01T03:46:00Z"),
    ("2024-03-01T09:17:00.500", "2024-03-01T03:47:00.500Z"),
    ("20240301T091800", "2024-03-01T03:48:00Z"),
    ("2024-03-01T03:49:00Z", "2024-03-01T03:49:00Z"),  # an offset means what it says, whatever --tz is
    ("2024-03-01T09:20:00+05:30", "2024-03-01T03:50:00Z"),
    ("2024-03-01T09:21:00+0530", "2024-03-01T03:51:00Z"),
    ("2024-03-01T08:52:00+05", "2024-03-01T03:52:00Z"),
    ("2024-02-29T22:53:00-04:00", "2024-03-01T02:53:00Z"),
    ("2024-03-01 09:24:00 +05:30", "2024-03-01T03:54:00Z"),
]


def ist_file(tmp_path: Path, forms: list[tuple[str, str]]) -> Path:
    ordered = sorted(forms, key=lambda f: pd.Timestamp(f[1]))
    return write(tmp_path, GENERIC + "".join(f"{text},100,105,99,104,1000\n" for text, _ in ordered))


@pytest.mark.parametrize("reader", ["fast", "line-tracking"])
def test_with_a_zone_a_time_without_an_offset_is_a_wall_time_there(tmp_path: Path, reader: str) -> None:
    path = ist_file(tmp_path, IST_FORMS)
    frame = load_bar_file(path, IST) if reader == "fast" else barfiles.validate(barfiles._read_csv(path), IST)
    expected = sorted(pd.Timestamp(instant) for _, instant in IST_FORMS)
    assert frame["timestamp"].tolist() == expected
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_both_readers_agree_on_times_in_a_zone(tmp_path: Path) -> None:
    path = ist_file(tmp_path, IST_FORMS)
    pd.testing.assert_frame_equal(load_bar_file(path, IST), barfiles.validate(barfiles._read_csv(path), IST))


def test_without_a_zone_the_same_file_is_read_as_utc(tmp_path: Path) -> None:
    frame = load_bar_file(ist_file(tmp_path, IST_FORMS[:5]), UTC)  # the forms without an offset
    assert frame["timestamp"].iloc[0] == pd.Timestamp("2024-03-01T00:00:00Z")
    assert frame["timestamp"].iloc[1] == pd.Timestamp("2024-03-01T09:15:00Z")


def test_parquet_times_without_a_zone_are_wall_times_in_the_zone(tmp_path: Path) -> None:
    times = pd.to_datetime(["2024-03-01 09:15", "2024-03-01 09:16"])
    prices = {name: [100.0, 101.0] for name in ("open", "high", "low", "close")}
    pd.DataFrame({"timestamp": times, **prices, "volume": [1, 2]}).to_parquet(tmp_path / "naive.parquet")
    aware = pd.DataFrame({"timestamp": times.tz_localize("UTC"), **prices, "volume": [1, 2]})
    aware.to_parquet(tmp_path / "aware.parquet")
    assert load_bar_file(tmp_path / "naive.parquet", IST)["timestamp"].iloc[0] == pd.Timestamp(
        "2024-03-01T03:45Z"
    )
    assert load_bar_file(tmp_path / "aware.parquet", IST)["timestamp"].iloc[0] == pd.Timestamp(
        "2024-03-01T09:15Z"
    )


@pytest.mark.parametrize(
    ("day", "wall"),
    [("2024-03-31", "01:30:00"), ("2024-10-27", "01:30:00")],  # skipped, then repeated, by London's clocks
    ids=["skipped", "repeated"],
)
def test_a_wall_time_that_is_not_one_instant_in_the_zone_is_a_bad_row(
    tmp_path: Path, day: str, wall: str
) -> None:
    rows = [f"{day} 00:30:00", f"{day} {wall}", f"{day} 03:30:00"]
    path = write(tmp_path, GENERIC + "".join(f"{r},100,105,99,104,1000\n" for r in rows))
    with pytest.raises(BarFileError) as info:
        load_bar_file(path, LONDON)
    assert (info.value.line, info.value.column) == (3, "timestamp")
    assert f"'{day} {wall}' is not one instant in Europe/London" in str(info.value)
    assert "write it with its offset" in str(info.value)
    assert len(load_bar_file(path, IST)) == 3  # the same wall times are instants in IST


def test_a_zone_is_an_iana_name_or_utc() -> None:
    assert time_zone("utc") is UTC
    assert time_zone(" Asia/Kolkata ") == IST
    for bad in ("IST", "Asia", "../etc/passwd", ""):
        with pytest.raises(BadZoneError, match=f"--tz {bad!r}: not a time zone; use an IANA name"):
            time_zone(bad)


@pytest.mark.parametrize(
    ("bad_row", "column", "needle"),
    [
        ("2024-01-02T09:16:00Z,104,106,103,abc,1200", "close", "not a number: 'abc'"),
        ("yesterday,104,106,103,105,1200", "timestamp", "not a timestamp"),
        ("2024-01-02T09:16:00Z,104,104.5,103,105,1200", "high", "below max(open, close)"),
        ("2024-01-02T09:16:00Z,104,106,104.5,105,1200", "low", "above min(open, close)"),
        ("2024-01-02T09:16:00Z,104,106,103,105,-1", "volume", "volume must be >= 0"),
        ("2024-01-02T09:15:00Z,104,106,103,105,1200", "timestamp", "is not after"),
        ("2024-01-02T09:16:00Z,0,106,0,105,1200", "open", "price must be > 0"),
        ("2024-01-02T09:16:00Z,104,106,103,nan,1200", "close", "not a number"),
        ("2024-01-02T09:16:00Z,104,106,103,105", "volume", "missing value"),
    ],
)
def test_a_bad_row_is_reported_with_file_line_and_column(
    tmp_path: Path, bad_row: str, column: str, needle: str
) -> None:
    path = write(tmp_path, GENERIC + ROWS[0] + "\n" + bad_row + "\n" + ROWS[2] + "\n")
    error = rejected(path)
    assert (error.path, error.line, error.column) == (str(path), 3, column)
    assert needle in error.problem
    assert f"{path}: line 3, column '{column}'" in str(error)


def test_line_numbers_count_blank_lines_and_the_header(tmp_path: Path) -> None:
    text = GENERIC + ROWS[0] + "\n\n" + ROWS[1] + "\n" + ROWS[2].replace(",101,", ",x,") + "\n"
    error = rejected(write(tmp_path, text))
    assert (error.line, error.column) == (5, "low")


def test_the_first_bad_row_is_named_and_the_others_counted(tmp_path: Path) -> None:
    rows = [ROWS[0], ROWS[1].replace("106", "1"), ROWS[2].replace("900", "-5")]
    error = rejected(write(tmp_path, GENERIC + "\n".join(rows) + "\n"))
    assert (error.line, error.column, error.more) == (3, "high", 1)


def test_the_yahoo_column_name_is_reported_as_written(tmp_path: Path) -> None:
    text = "Date,Open,High,Low,Close,Volume\n2024-01-02,100,105,99,104,1000\n2024-01-03,104,106,103,??,1\n"
    error = rejected(write(tmp_path, text))
    assert (error.line, error.column) == (3, "Close")


def test_a_missing_column_names_the_header_line(tmp_path: Path) -> None:
    error = rejected(write(tmp_path, "timestamp,open,high,low,close\n2024-01-02,1,1,1,1\n"))
    assert (error.line, error.column) == (1, "volume")
    assert "expected header" in error.problem


def test_a_file_without_rows_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, GENERIC)
    assert str(rejected(path)) == f"{path}: line 2: no data rows"  # a line, but no column to name


def test_unknown_suffix_is_rejected(tmp_path: Path) -> None:
    assert "unknown file type" in rejected(write(tmp_path, GENERIC, "bars.txt")).problem


def test_parquet_with_date_index_and_typed_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "Open": [100.0, 104.0],
            "High": [105.0, 106.0],
            "Low": [99.0, 103.0],
            "Close": [104.0, 105.0],
            "Volume": [1000, 1200],
        },
        index=pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="Date"),
    )
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    loaded = load_bar_file(path)
    assert loaded["timestamp"].tolist() == [
        pd.Timestamp("2024-01-02", tz="UTC"),
        pd.Timestamp("2024-01-03", tz="UTC"),
    ]


def test_parquet_bad_row_is_named_by_row_number(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"], utc=True),
            "open": [100.0, 104.0, 1.0],
            "high": [105.0, 106.0, 2.0],
            "low": [99.0, 103.0, 1.5],
            "close": [104.0, 105.0, 1.8],
            "volume": [1.0, 2.0, 3.0],
        }
    )
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    error = rejected(path)
    assert (error.unit, error.line, error.column) == ("row", 3, "low")


# -- the two CSV readers ---------------------------------------------------------------------------------
def exact(path: Path) -> pd.DataFrame:
    """What the line-tracking reader alone makes of the file."""
    return barfiles.validate(barfiles._read_csv(path))


def test_a_plain_file_is_read_without_the_line_tracking_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, GENERIC + "\n".join(ROWS) + "\n")
    expected = exact(path)

    def refuse(path: Path) -> None:
        raise AssertionError("the line-tracking reader was used for a plain file")

    monkeypatch.setattr(barfiles, "_read_csv", refuse)
    pd.testing.assert_frame_equal(load_bar_file(path), expected, check_exact=True)


@pytest.mark.parametrize(
    "text",
    [
        GENERIC + "\n".join(ROWS) + "\n",
        "\ufeff" + GENERIC + "\n".join(ROWS),  # a byte-order mark, no final newline
        "\n\n" + GENERIC + ROWS[0] + "\n\n" + ROWS[1] + "\r\n" + ROWS[2] + "\n\n",
        GENERIC + ROWS[0] + "\n,,,,,\n" + ROWS[1] + "\n   \n" + ROWS[2] + "\n",  # rows of blanks
        GENERIC + '"2024-01-02T09:15:00Z","100", 105 ,99,104 ,1000\n' + ROWS[1] + "\n",  # quotes, spaces
        GENERIC + " 2024-01-02T09:15:00Z,100,105,99,104,1000\n" + ROWS[1] + "\n",
        GENERIC + "2024-01-02T09:15:00Z,100,105,99,104,-0\n" + ROWS[1].replace("1200", "-0.0") + "\n",
        GENERIC + "2024-01-02T09:15:00Z,1e2,105.000,+99,0104,1000\n",
        "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,100,105,99,104,103.5,1000\n",
        "volume,close,low,high,open,timestamp\n1,104,99,105,100,2024-01-02 09:15:00+05:30\n",
        "timestamp,open,high,low,close,volume,open\n2024-01-02,100,105,99,104,1,x\n",  # a repeated name
        'timestamp,open,high,low,close,volume,note\n2024-01-02,100,105,99,104,1,"two\nlines"\n',
    ],
)
def test_both_readers_give_the_same_frame(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    frame = load_bar_file(path)
    pd.testing.assert_frame_equal(frame, exact(path), check_exact=True)
    assert not np.signbit(frame["volume"].to_numpy()).any()  # "-0" is a volume of 0.0, not -0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.decimals(min_value="0.0001", max_value="1e9", allow_nan=False, places=4),
            st.integers(min_value=0, max_value=10**12),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_both_readers_agree_on_any_prices(rows: list[tuple[Decimal, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            f"2024-01-02T09:{i // 60:02d}:{i % 60:02d}+05:30,{p},{p},{p},{p},{v}"
            for i, (p, v) in enumerate(rows)
        ]
        path = Path(tmp) / "bars.csv"
        path.write_text(GENERIC + "\n".join(lines) + "\n")
        pd.testing.assert_frame_equal(load_bar_file(path), exact(path), check_exact=True)


def test_bytes_that_are_not_utf8_are_refused_even_deep_in_an_ignored_column(tmp_path: Path) -> None:
    rows = [f"2024-01-02T09:{i // 60:02d}:{i % 60:02d}Z,100,105,99,104,1000,ok" for i in range(3_000)]
    rows[2_500] = rows[2_500].replace(",ok", ",caf\xe9")
    path = tmp_path / "bars.csv"
    path.write_bytes(
        ("timestamp,open,high,low,close,volume,note\n" + "\n".join(rows) + "\n").encode("latin-1")
    )
    error = rejected(path)
    assert error.unit == "file"
    assert "cannot read" in error.problem


# -- NSE's downloads -------------------------------------------------------------------------------------
NSE_STOCK = (  # nseindia.com, a stock's "Security-wise Price Volume & Deliverable Position Data"
    '"Symbol  ","Series  ","Date  ","Prev Close  ","Open Price  ","High Price  ","Low Price  ",'
    '"Last Price  ",'
    '"Close Price  ","Average Price ","Total Traded Quantity  ","Turnover ₹  ","No. of Trades  "\n'
    '"INFY","EQ","01-Jan-2024","1542.60","1542.60","1549.00","1535.20","1543.70","1542.95","1542.30",'
    '"3,035,963","4,682,335,285.40","98,771"\n'
    '"INFY","EQ","02-Jan-2024","1542.95","1538.00","1548.00","1524.00","1535.00","1534.85","1535.40",'
    '"5,282,567","8,110,993,553.65","164,498"\n'
)
NSE_HISTORY = (  # a stock's "Historical Data" download: newest first, prices with thousands separators
    "Date ,series ,OPEN ,HIGH ,LOW ,PREV. CLOSE ,ltp ,close ,vwap ,52W H ,52W L ,VOLUME ,VALUE ,"
    "No of trades \n"
    '"03-JAN-2024","EQ","1,530.00","1,545.00","1,520.00","1,534.85","1,540.00","1,541.10","1,535.00",'
    '"1,733.00","1,215.00","40,00,000","6,100,000,000.00","150,000"\n'
    '"02-JAN-2024","EQ","1,538.00","1,548.00","1,524.00","1,542.95","1,535.00","1,534.85","1,535.40",'
    '"1,733.00","1,215.00","5,282,567","8,110,993,553.65","164,498"\n'
    '"01-JAN-2024","EQ","1,542.60","1,549.00","1,535.20","1,542.60","1,543.70","1,542.95","1,542.30",'
    '"1,733.00","1,215.00","3,035,963","4,682,335,285.40","98,771"\n'
)


def test_a_stock_file_from_nse_is_read_by_its_own_column_names(tmp_path: Path) -> None:
    frame = load_bar_file(write(tmp_path, NSE_STOCK), ZoneInfo("Asia/Kolkata"))
    assert [t.isoformat() for t in frame["timestamp"]] == [
        "2023-12-31T18:30:00+00:00",
        "2024-01-01T18:30:00+00:00",
    ]
    assert frame["close"].tolist() == [1542.95, 1534.85]  # Close Price, not Last Price or Prev Close
    assert frame["volume"].tolist() == [3_035_963.0, 5_282_567.0]  # Total Traded Quantity, separators gone


def test_a_file_listed_newest_first_is_read_oldest_first(tmp_path: Path) -> None:
    frame = load_bar_file(write(tmp_path, NSE_HISTORY))
    assert [t.date().isoformat() for t in frame["timestamp"]] == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert frame["open"].tolist() == [1542.6, 1538.0, 1530.0]
    assert frame["volume"].tolist() == [3_035_963.0, 5_282_567.0, 4_000_000.0]  # 40,00,000: Indian grouping
    newest_first = GENERIC + "\n".join(reversed(ROWS)) + "\n"
    pd.testing.assert_frame_equal(
        load_bar_file(write(tmp_path, newest_first, "r.csv")), exact(tmp_path / "r.csv")
    )
    assert load_bar_file(tmp_path / "r.csv")["timestamp"].is_monotonic_increasing


def test_a_bad_row_of_a_file_read_in_reverse_is_named_by_its_own_line(tmp_path: Path) -> None:
    bad = NSE_HISTORY.replace('"1,548.00"', '"1,500.00"').replace('"1,549.00"', '"??"')
    error = rejected(write(tmp_path, bad))
    assert (error.line, error.column, error.more) == (3, "HIGH", 1)  # the top one of the two, as written
    assert "high 1500 is below max(open, close) 1538" in error.problem


def test_one_row_out_of_order_is_refused_not_sorted(tmp_path: Path) -> None:
    rows = [ROWS[2], ROWS[0], ROWS[1]]
    error = rejected(write(tmp_path, GENERIC + "\n".join(rows) + "\n"))
    assert (error.line, error.column) == (3, "timestamp")  # 09:15 after 09:17


@pytest.mark.parametrize(
    ("value", "read"), [("1,542.60", 1542.6), ("30,35,963", 3035963.0), ("1542,60", None)]
)
def test_thousands_separators_are_read_and_a_decimal_comma_is_not_a_number(
    tmp_path: Path, value: str, read: float | None
) -> None:
    path = write(tmp_path, GENERIC + f'2024-01-02T09:15:00Z,100,1e9,99,104,"{value}"\n')
    if read is None:
        assert "not a number: '1542,60'" in rejected(path).problem
    else:
        assert load_bar_file(path)["volume"].tolist() == [read]


def test_an_index_file_from_nse_takes_shares_traded_as_the_volume(tmp_path: Path) -> None:
    text = (
        "Date ,Open ,High ,Low ,Close ,Shares Traded ,Turnover (₹ Cr)\n"
        "02-JAN-2024,21751.35,21755.60,21555.65,21665.80,351912340,30548.63\n"
        "01-JAN-2024,21727.75,21834.35,21680.85,21741.90,154021211,12617.21\n"
    )
    frame = load_bar_file(write(tmp_path, text, "NIFTY.csv"))
    assert [t.date().isoformat() for t in frame["timestamp"]] == ["2024-01-01", "2024-01-02"]
    assert frame["volume"].tolist() == [154021211.0, 351912340.0]


# -- a file's symbol ----------------------------------------------------------------------------------------
def test_a_files_symbol_column_names_its_symbol_before_its_name(tmp_path: Path) -> None:
    nse = write(tmp_path, NSE_STOCK, "01-01-2024-TO-31-12-2024INFYEQN.csv")  # NSE's name: a symbol too
    assert barfiles.input_symbols([nse], None) == ["INFY"]
    assert barfiles.input_symbols([nse], ["infosys"]) == ["INFOSYS"]  # --symbol still decides
    plain = write(tmp_path, GENERIC + "\n".join(ROWS) + "\n", "tcs.csv")
    assert barfiles.input_symbols([nse, plain], None) == ["INFY", "TCS"]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("Quote-Equity-INFY-EQ-01-01-2024-to-31-12-2024.csv", "INFY"),
        ("Quote-Equity-BAJAJ-AUTO-EQ-07-12-2025-to-07-12-2026.csv", "BAJAJ-AUTO"),
        ("quote-equity-M&M-BE-01-01-2024-to-31-12-2024 (1).csv", "M&M"),  # a browser's second copy
    ],
)
def test_nses_historical_data_download_is_named_by_the_symbol_in_its_name(
    tmp_path: Path, name: str, symbol: str
) -> None:
    path = write(tmp_path, NSE_HISTORY, name)  # no Symbol column
    assert barfiles.input_symbols([path], None) == [symbol]


def test_a_symbol_column_value_that_is_no_symbol_leaves_the_files_name(tmp_path: Path) -> None:
    text = "Symbol,Date,Open,High,Low,Close,Volume\nINFY.NS,2024-01-02,1,2,1,2,10\n"
    assert barfiles.input_symbols([write(tmp_path, text, "infy.csv")], None) == ["INFY"]
    with pytest.raises(barfiles.InputError) as info:
        barfiles.input_symbols([write(tmp_path, text, "infy.ns.csv")], None)
    assert "nor is its Symbol column's 'INFY.NS'" in str(info.value)


def test_a_file_of_several_symbols_is_refused_naming_them(tmp_path: Path) -> None:
    rows = [
        f"{s},2024-01-0{d},1,2,1,2,10"
        for d in (2, 3)
        for s in ("INFY", "TCS", "WIPRO", "HDFC", "ITC", "SBIN")
    ]
    text = " symbol ,date,open,high,low,close,volume\n" + "\n".join(rows) + "\n"
    path = write(tmp_path, text, "bhavcopy.csv")
    said = str(rejected(path))
    assert said == (
        f"{path}: its symbol column holds several symbols (INFY, TCS, WIPRO, HDFC, ITC, ...); a bar file"
        " holds one symbol: split it into a file per symbol"
    )
    assert barfiles.input_symbols([path], None) == [
        "BHAVCOPY"
    ]  # named by the file; then refused by the reader


def test_a_parquet_files_symbol_column_names_its_symbol(tmp_path: Path) -> None:
    frame = load_bar_file(write(tmp_path, GENERIC + "\n".join(ROWS) + "\n"))
    path = tmp_path / "bars.parquet"
    frame.assign(Symbol="RELIANCE").to_parquet(path)
    assert barfiles.input_symbols([path], None) == ["RELIANCE"]
    pd.testing.assert_frame_equal(load_bar_file(path), frame)  # the column is not a bar column
    frame.assign(Symbol=["RELIANCE", "TCS", "TCS"]).to_parquet(path)
    assert "its Symbol column holds several symbols (RELIANCE, TCS)" in str(rejected(path))
