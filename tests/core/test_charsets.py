from __future__ import annotations

import codecs
import time
from pathlib import Path

import pytest
from charset_normalizer import from_bytes

from studio.core.config import DataConfig
from studio.core.data.charsets import detect_encoding
from studio.core.errors import DataError

CHINESE = "滚滚长江东逝水，浪花淘尽英雄。是非成败转头空。\n青山依旧在，几度夕阳红。\n"
FRENCH = "Le cœur a ses raisons que la raison ne connaît point.\nÉté, café, naïve.\n"

# A few sentences in each of eight scripts, written for these tests, in the legacy encodings people
# still hand us: (language, codec, text).
LEGACY = [
    ("French", "cp1252",
     "Le cœur a ses raisons que la raison ne connaît point. L’été dernier, nous avons visité la côte bretonne : "
     "les falaises, les phares et les petits ports de pêche.\n« C’est magnifique », a dit ma grand-mère en goûtant "
     "une crêpe au beurre salé. Les élèves préfèrent étudier à la bibliothèque où règne un silence agréable.\n"
     "Noël approche, et chacun prépare déjà des cadeaux pour sa famille.\n"),
    ("German", "cp1252",
     "Die Straße war nass, und die Fußgänger eilten über den Platz. Über Nacht hatte es geschneit; die Kinder "
     "bauten einen großen Schneemann vor der Schule.\nMüller erzählte, dass er früher jeden Morgen Brötchen beim "
     "Bäcker gekauft hätte. „Schön, dass du da bist“, sagte die Großmutter und öffnete die Tür.\nÄpfel, Birnen "
     "und Pflaumen wachsen im Garten hinter dem Haus.\n"),
    ("Russian", "cp1251",
     "Москва — столица России, крупнейший по численности населения город страны. Летом мы ездили на дачу, где "
     "бабушка выращивает огурцы, помидоры и клубнику.\n«Всё будет хорошо», — сказал отец и улыбнулся. Вечером мы "
     "читали книги и пили чай с вареньем.\nЗимой здесь очень холодно, и реки покрываются толстым льдом.\n"),
    ("Russian", "koi8-r",
     "Поезд медленно отошёл от платформы, и мы долго смотрели в окно на уходящий город. В купе было тепло и тихо; "
     "проводник принёс нам горячий чай в стаканах с подстаканниками.\nЗа окном мелькали берёзы, деревни и "
     "бесконечные поля. Утром мы проснулись уже в другом городе, где нас встречали старые друзья.\n"),
    ("Chinese (simplified)", "gb18030",
     "今天天气很好，我们一起去公园散步。湖边有很多人在钓鱼，孩子们在草地上放风筝。\n中午我们在一家小饭馆吃了饺子和面条，"
     "味道非常好。下午回家的路上，我们买了一些新鲜的水果和蔬菜。\n晚上大家坐在一起聊天，度过了愉快的一天。\n"),
    ("Chinese (traditional)", "big5",
     "臺灣的夜市非常熱鬧，每到晚上就有許多人來這裡吃東西。我最喜歡的是蚵仔煎和珍珠奶茶，價格便宜又好吃。\n週末的時候，"
     "我們常常和朋友一起去山上爬山，欣賞美麗的風景。\n學校附近有一間書店，裡面有很多舊書和雜誌。\n"),
    ("Japanese", "shift_jis",
     "今日はとても良い天気です。私たちは朝早く起きて、近くの山へハイキングに行きました。\n山の上から見た景色は本当に"
     "きれいでした。お昼には、お母さんが作ってくれたおにぎりを食べました。\n帰りに温泉に入って、ゆっくり休みました。\n"),
    ("Japanese", "euc-jp",
     "東京の地下鉄はとても便利ですが、朝の通勤時間はいつも混雑しています。\n駅の近くには小さな喫茶店がたくさんあり、"
     "コーヒーを飲みながら新聞を読む人が多いです。\n週末になると、公園で桜を見ながらお弁当を食べる家族の姿が見られます。\n"),
    ("Korean", "euc-kr",
     "오늘은 날씨가 아주 좋아서 친구들과 함께 한강 공원에 갔습니다. 우리는 자전거를 타고 강을 따라 달렸습니다.\n"
     "점심에는 김밥과 떡볶이를 먹었는데 정말 맛있었습니다. 저녁에는 집에 돌아와서 가족과 함께 영화를 보았습니다.\n"
     "내일은 도서관에 가서 책을 읽을 예정입니다.\n"),
    ("Greek", "cp1253",
     "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας και μία από τις αρχαιότερες πόλεις του κόσμου. Το καλοκαίρι πολλοί "
     "τουρίστες επισκέπτονται τα νησιά του Αιγαίου.\nΣτην ταβέρνα φάγαμε ψάρι, σαλάτα και ελιές, και ήπιαμε κρασί. "
     "Τα παιδιά έπαιζαν στην παραλία μέχρι να δύσει ο ήλιος.\n"),
    ("Spanish", "latin-1",
     "El año pasado viajamos a Andalucía para conocer la Alhambra de Granada. ¿Quién no ha soñado con pasear por "
     "sus jardines?\nComimos paella, jamón y queso manchego en un pequeño restaurante junto al río. Mi abuela "
     "siempre decía: «la paciencia es la madre de la ciencia».\nPor la mañana, los niños corrían por la plaza "
     "mientras sonaban las campanas de la iglesia.\n"),
]


@pytest.mark.parametrize(
    ("data", "codec", "label"),
    [
        (FRENCH.encode("utf-8"), "utf-8", "UTF-8"),
        (codecs.BOM_UTF8 + FRENCH.encode("utf-8"), "utf-8-sig", "UTF-8 with BOM"),
        (FRENCH.encode("utf-16"), "utf-16", "UTF-16 (little-endian, BOM)"),
        ("plain ascii text\n".encode("utf-16-le"), "utf-16-le", "UTF-16 (little-endian)"),
        (CHINESE.encode("gb18030"), "gb18030", "GB18030 (GBK-compatible)"),
        (CHINESE.encode("gbk"), "gb18030", "GB18030 (GBK-compatible)"),
        # Latin-1 text without C1 controls reads the same as Windows-1252, the more common of the two.
        (FRENCH.replace("œ", "oe").encode("latin-1"), "cp1252", "Windows-1252"),
    ],
)
def test_detects_and_decodes(tmp_path: Path, data: bytes, codec: str, label: str) -> None:
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    report = detect_encoding(path)
    assert (report.codec, report.label) == (codec, label)
    assert data.decode(report.codec).lstrip("\ufeff").replace("oe", "œ") in (FRENCH, CHINESE, "plain ascii text\n")


def _right(path: Path, text: str) -> bool:
    try:
        report = detect_encoding(path)
        return path.read_bytes().decode(report.codec) == text
    except (DataError, UnicodeDecodeError):
        return False


def test_legacy_encodings_at_least_as_well_as_charset_normalizer(tmp_path: Path) -> None:
    """Right means: decodes to exactly the text written. The old rules got 2 of these 11 right."""
    ours = alone = 0
    for k, (_language, codec, text) in enumerate(LEGACY):
        data = text.encode(codec)
        path = tmp_path / f"{k}-{codec}.txt"
        path.write_bytes(data)
        ours += _right(path, text)
        best = from_bytes(data).best()
        alone += best is not None and str(best) == text
    assert len(LEGACY) == 11
    assert ours >= alone and ours >= 10, (ours, alone)


def test_legacy_reason_says_what_and_why(tmp_path: Path) -> None:
    path = tmp_path / "fr.txt"
    path.write_bytes(("Bonjour tout le monde.\n" * 2 + LEGACY[0][2]).encode("cp1252"))
    report = detect_encoding(path)
    assert report.codec == "cp1252" and report.label == "Windows-1252"
    assert report.reason == "not UTF-8 (first non-UTF-8 byte on line 3); charset-normalizer: Windows-1252, French"


def test_a_few_accents_in_a_legacy_file_are_not_damage(tmp_path: Path) -> None:
    path = tmp_path / "menu.txt"
    text = "The menu of the day:\n" * 20 + "Le café est très bon.\n"
    path.write_bytes(text.encode("cp1252"))
    assert path.read_bytes().decode(detect_encoding(path).codec) == text


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.txt: the file is empty"):
        detect_encoding(path)


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError, match=r"model\.bin: looks like a binary file"):
        detect_encoding(path)


def test_corrupt_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "damaged.txt"
    path.write_bytes("première ligne\ndeuxième ligne\n".encode() + b"troisi\xe8me \xff ligne\n" + "quatrième\n".encode())
    with pytest.raises(DataError) as e:
        detect_encoding(path)
    assert "damaged.txt, line 3:" in str(e.value)
    assert "not valid UTF-8" in str(e.value)


@pytest.mark.parametrize(
    "broken",
    [
        b"caf\xc3 au lait",  # a two-byte character (é) cut after its lead byte
        b"he said \xe2\x80 hello",  # a curly quote cut after two of its three bytes
        b"smile \xf0\x9f\x98 please",  # an emoji cut after three of four
    ],
)
def test_damaged_utf8_in_an_otherwise_ascii_file_names_the_line(tmp_path: Path, broken: bytes) -> None:
    """Used to be read as Latin-1 without a word."""
    path = tmp_path / "notes.txt"
    path.write_bytes(b"plain ascii line\n" * 40 + broken + b"\n" + b"more ascii\n" * 5)
    with pytest.raises(DataError) as e:
        detect_encoding(path)
    assert "notes.txt, line 41:" in str(e.value)
    assert "not valid UTF-8" in str(e.value) and "cut short" in str(e.value)


def test_undecodable_garbage_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(128, 256)) * 8)
    with pytest.raises(DataError, match=r"noise\.txt: cannot tell the encoding"):
        detect_encoding(path)


def test_detection_of_a_large_sample_is_quick(tmp_path: Path) -> None:
    """Only the first MiB is examined; charset-normalizer takes about 0.15 s on it here."""
    for codec, text in (("cp1251", LEGACY[2][2]), ("gb18030", LEGACY[4][2])):
        data = text.encode(codec)
        path = tmp_path / f"big-{codec}.txt"
        path.write_bytes(data * (3 * 2**20 // len(data)))
        started = time.perf_counter()
        report = detect_encoding(path)
        assert time.perf_counter() - started < 5.0
        assert data.decode(report.codec) == text


def test_declared_encoding_is_used(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_bytes(CHINESE.encode("gbk"))
    assert detect_encoding(path, "gbk").codec == "gbk"
    with pytest.raises(DataError, match="unknown encoding"):
        detect_encoding(path, "klingon-8")


@pytest.mark.parametrize("name", ["rot13", "zlib", "base64", "undefined", "klingon-8"])
def test_codecs_that_cannot_read_text_are_refused(tmp_path: Path, name: str) -> None:
    """rot13 and zlib used to pass validation and then fail with a LookupError."""
    issues = DataConfig(encoding=name).check()
    assert [i.key for i in issues] == ["data.encoding"], issues
    path = tmp_path / "x.txt"
    path.write_text("hello\n")
    with pytest.raises(DataError, match=r"x\.txt: .*(not a text encoding|unknown encoding|cannot decode)"):
        detect_encoding(path, name)


def test_text_codecs_pass_validation() -> None:
    for name in ("auto", "utf-8", "gb18030", "cp1252", "latin-1", "utf-16", "shift_jis"):
        assert DataConfig(encoding=name).check() == []
