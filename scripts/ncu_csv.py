"""What the device steps' summaries (scripts/device_token_profile.sh, scripts/device_launch_floor.sh) read from ncu's
--csv output: its table rows, a kernel's short name and a number. The steps run their python with PYTHONPATH at
scripts/."""
import csv


def rows(path):
    """The CSV's table rows (the header first); ncu's own log lines have fewer fields."""
    with open(path) as f:
        return [r for r in csv.reader(f) if len(r) > 10]


def kernel_name(text):
    """A kernel's name without its namespace noise, return type and parameters: "q8_matvec_kernel<1>"."""
    return text.replace("(anonymous namespace)::", "").split("(")[0].replace("void ", "")


def number(text):
    """A metric value ("1,234.5" -> 1234.5)."""
    return float(text.replace(",", ""))
