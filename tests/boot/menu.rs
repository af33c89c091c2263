//! The console menu (`boot/lib/ntfsclone-menu.sh`): the initramfs booted with no job, driven
//! through the serial console (QEMU's stdin and stdout) like a person at the keyboard. One boot:
//! bad input is asked again, a wrong confirmation cancels (the target stays zero), a clone of the
//! first virtio disk to the second runs through the job (marker, summary, the reference's bytes),
//! a save to a FAT32 disk and a restore of that image (picked from the disk's list) onto a fourth
//! disk give the reference's bytes too, and `q` gives the shell.
use crate::common::*;
use crate::qemu::{Console, Qemu};
use crate::rescue::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A FAT32 disk labelled STICK (the menu lists its type and label).
fn fat_disk(path: &Path) -> PathBuf {
    fs::File::create(path).unwrap().set_len(40 << 20).unwrap();
    let st = run(Command::new(require("mkfs.vfat"))
        .args(["-F", "32", "-n", "STICK"])
        .arg(path));
    assert!(
        st.status.success(),
        "mkfs.vfat: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    path.to_path_buf()
}

const MODE: &str = "mode [1-3, r = rescan, q = shell]: ";
const SOURCE: &str = "source (NTFS volume) [1-4, q = shell]: ";
const TARGET: &str = "target (overwritten) [1-4, q = shell]: ";
const CONFIRM: &str = "Type vdb to go on (anything else cancels): ";

/// After a confirmation: waits for the job's marker and the menu again; returns the job's output,
/// the marker's word after `ntfsclone-job: ` and the summary line.
fn job_result(c: &mut Console) -> (String, String, String) {
    let run = c.expect("ntfsclone-job: ", Duration::from_secs(300));
    let rest = c.expect(MODE, Duration::from_secs(60));
    let marker = rest.lines().next().unwrap_or("").trim_end().to_string();
    let summary = rest
        .lines()
        .find(|l| l.starts_with("summary: "))
        .unwrap_or_else(|| panic!("no summary line:\n{rest}"))
        .trim_end()
        .to_string();
    (run, marker, summary + "\n" + &rest)
}

#[test]
fn menu_on_the_serial_console() {
    let t = TempDir::new("boot-menu");
    let src = sample_volume(t.path());
    let tgt = empty_disk(&t.join("target.img"));
    let stick = fat_disk(&t.join("stick.img"));
    let restored = empty_disk(&t.join("restored.img"));
    let want = reference_clone(&src, t.path());
    let out = boot_out();
    let start = Instant::now();
    let mut c = Qemu::new(t.path(), "menu")
        .kernel(
            &out.join("vmlinuz"),
            &out.join("initramfs.img"),
            // No ntfsclone.* parameter: no job, so the menu. The monitor as a second console, as
            // the ISO and PXE boot: the menu asks on both screens for Enter first.
            "console=tty0 console=ttyS0,115200 quiet no_timer_check",
        )
        .no_net()
        .disk(&src, true)
        .disk(&tgt, false)
        .disk(&stick, false)
        .disk(&restored, false)
        .console();

    c.answer("Press Enter for the menu on this screen.", "");
    // The list: NTFS with its label, an empty disk, FAT32 with its label.
    let list = c.expect(MODE, Duration::from_secs(60));
    let row = |dev: &str| {
        list.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(dev))
            .unwrap_or_else(|| panic!("no {dev} in the menu:\n{list}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        row("/dev/vda").starts_with("1 /dev/vda 32.0 MiB ntfs \"bootdemo\" virtio_blk"),
        "{list}"
    );
    assert!(
        row("/dev/vdb").starts_with("2 /dev/vdb 32.0 MiB -"),
        "{list}"
    );
    assert!(
        row("/dev/vdc").starts_with("3 /dev/vdc 40.0 MiB vfat \"STICK\""),
        "{list}"
    );

    // Bad input is asked again; a source that is not NTFS and a target that is the source are refused.
    c.send("x");
    c.expect("not a mode: x", Duration::from_secs(30));
    c.answer(MODE, "1");
    c.answer(SOURCE, "7");
    c.expect("no entry 7", Duration::from_secs(30));
    c.answer(SOURCE, "2");
    c.expect("/dev/vdb is not an NTFS volume", Duration::from_secs(30));
    c.answer(SOURCE, "1");
    c.answer(TARGET, "1");
    c.expect("/dev/vda is the source /dev/vda", Duration::from_secs(30));
    c.answer(TARGET, "2");

    // The command and the job parameters; a wrong name cancels and writes nothing.
    let shown = c.answer(CONFIRM, "vda");
    assert!(
        shown.contains("command:        ntfsclone --overwrite /dev/vdb /dev/vda"),
        "{shown}"
    );
    assert!(
        shown.contains(
            "job parameters: ntfsclone.mode=clone ntfsclone.source=/dev/vda ntfsclone.target=/dev/vdb"
        ),
        "{shown}"
    );
    c.expect("cancelled: nothing was written", Duration::from_secs(30));
    c.expect(MODE, Duration::from_secs(60));
    assert!(
        fs::read(&tgt).unwrap().iter().all(|&b| b == 0),
        "the cancelled clone wrote to the target"
    );

    // The clone, confirmed: the job's output, its marker and the summary.
    c.send("1");
    c.answer(SOURCE, "1");
    c.answer(TARGET, "2");
    c.answer(CONFIRM, "vdb");
    let (run, marker, rest) = job_result(&mut c);
    let marker_secs = start.elapsed().as_secs_f64();
    assert!(
        run.contains("+ ntfsclone --overwrite /dev/vdb /dev/vda"),
        "{run}"
    );
    assert_eq!(marker, "ok", "marker: ntfsclone-job: {rest}");
    let summary = rest.lines().next().unwrap().to_string();
    eprintln!("menu: {summary:?}; marker {marker_secs:.1} s after QEMU start");
    // summary: clone ok, N bytes (X MiB) written to /dev/vdb in S s (R MiB/s)
    let words: Vec<&str> = summary.split_whitespace().collect();
    assert_eq!(&words[1..3], ["clone", "ok,"], "{summary}");
    assert_eq!(words[4], "bytes", "{summary}");
    assert_eq!(&words[6..9], ["MiB)", "written", "to"], "{summary}");
    assert_eq!(words[9], "/dev/vdb", "{summary}");
    assert!(summary.contains(" MiB/s)"), "{summary}");
    let bytes: u64 = words[3].parse().unwrap_or_else(|_| panic!("{summary}"));
    // Every nonzero sector of the result was written (the target started zero).
    let nonzero = want
        .chunks(512)
        .filter(|s| s.iter().any(|&b| b != 0))
        .count() as u64
        * 512;
    assert!(
        bytes >= nonzero && bytes <= VOL_BYTES,
        "{summary}: want between {nonzero} and {VOL_BYTES} bytes"
    );
    assert_same_disk(&tgt, &want, "menu clone");
    // The list shown again sees the clone on vdb.
    assert!(
        rest.lines().any(
            |l| l.split_whitespace().collect::<Vec<_>>()[..].starts_with(&[
                "2",
                "/dev/vdb",
                "32.0",
                "MiB",
                "ntfs",
                "\"bootdemo\""
            ])
        ),
        "{rest}"
    );

    // A save to the FAT32 stick (an empty disk is refused as the store), then a restore of the
    // image, picked from the stick's list, onto the fourth disk.
    c.send("2");
    c.answer(SOURCE, "1");
    c.answer("image store: disk or partition [1-4, q = shell]: ", "4");
    c.expect(
        "/dev/vdd has no file system to keep an image file on",
        Duration::from_secs(30),
    );
    c.answer("image store: disk or partition [1-4, q = shell]: ", "3");
    c.answer("image file on the store [/images/vda.img]: ", "");
    let shown = c.answer("Type vdc to go on (anything else cancels): ", "vdc");
    assert!(
        shown.contains(
            "job parameters: ntfsclone.mode=save ntfsclone.source=/dev/vda ntfsclone.image=/dev/vdc:/images/vda.img"
        ),
        "{shown}"
    );
    let (_, marker, rest) = job_result(&mut c);
    assert_eq!(marker, "ok", "save: ntfsclone-job: {rest}");
    assert!(rest.starts_with("summary: save ok, "), "{rest}");
    c.send("3");
    c.answer(
        "image store: disk or partition [1-4], h = HTTP server, q = shell: ",
        "3",
    );
    let list = c.expect(
        "image file on the store [1 or a path]: ",
        Duration::from_secs(60),
    );
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().take(2).eq(["1", "/images/vda.img"])),
        "{list}"
    );
    c.send("1");
    c.answer(TARGET, "4");
    let shown = c.answer("Type vdd to go on (anything else cancels): ", "vdd");
    assert!(
        shown.contains(
            "job parameters: ntfsclone.mode=restore ntfsclone.target=/dev/vdd ntfsclone.image=/dev/vdc:/images/vda.img"
        ),
        "{shown}"
    );
    let (_, marker, rest) = job_result(&mut c);
    assert_eq!(marker, "ok", "restore: ntfsclone-job: {rest}");
    assert!(rest.starts_with("summary: restore ok, "), "{rest}");
    assert_same_disk(&restored, &want, "menu save and restore");

    // q: the help text and a shell that runs commands.
    c.send("q");
    c.expect("No job on the kernel command line", Duration::from_secs(30));
    c.expect("# ", Duration::from_secs(30));
    c.send("echo shell-$((6*7))");
    c.expect("shell-42", Duration::from_secs(30));
    c.send("poweroff -f");
    c.wait_exit(Duration::from_secs(30));
}

/// The menu's file system probe (busybox has no blkid) on the host, under busybox sh: type and
/// label of NTFS (a non-ASCII label, from $Volume), FAT32, FAT16, ext4, exFAT, swap, and nothing.
#[test]
fn menu_probe_names_filesystems_and_labels() {
    let t = TempDir::new("menu-probe");
    let mk = |name: &str, size: u64, tool: &str, args: &[&str]| {
        let p = t.join(name);
        fs::File::create(&p).unwrap().set_len(size << 20).unwrap();
        if !tool.is_empty() {
            let st = run(Command::new(require(tool))
                .args(args)
                .arg(&p)
                .env("LC_ALL", "C.UTF-8"));
            assert!(
                st.status.success(),
                "{tool}: {}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
        p
    };
    let cases = [
        (
            mk(
                "n.img",
                16,
                "mkntfs",
                &["-q", "-F", "-f", "-L", "Wïndows €"],
            ),
            "ntfs",
            "Wïndows €",
        ),
        (
            mk("c.img", 16, "mkntfs", &["-q", "-F", "-f", "-c", "65536"]),
            "ntfs",
            "",
        ),
        (
            mk("f32.img", 40, "mkfs.vfat", &["-F", "32", "-n", "STICK"]),
            "vfat",
            "STICK",
        ),
        (mk("f16.img", 16, "mkfs.vfat", &["-F", "16"]), "vfat", ""),
        (
            mk("e.img", 16, "mkfs.ext4", &["-q", "-L", "data"]),
            "ext4",
            "data",
        ),
        (mk("x.img", 16, "mkfs.exfat", &[]), "exfat", ""),
        (mk("s.img", 16, "mkswap", &[]), "swap", ""),
        (mk("z.img", 1, "", &[]), "", ""),
    ];
    let lib = root().join("boot/lib");
    for (img, fs_type, label) in cases {
        let script = format!(
            ". '{0}/ntfsclone-job.sh'; . '{0}/ntfsclone-menu.sh'; blkid() {{ :; }}; menu_probe \"$IMG\"; printf '[%s][%s]\\n' \"$menu_fs\" \"$menu_label\"",
            lib.display()
        );
        let out = run(Command::new(require("busybox"))
            .args(["sh", "-c", &script])
            .env("IMG", &img));
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            got.trim_end(),
            format!("[{fs_type}][{label}]"),
            "{}: {}",
            img.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `menu_main` under busybox sh on the host with `input` on stdin and two made-up disks
/// (nothing is read from the host's disks; `job_run` is a stub that prints its job); returns the
/// output and the status.
fn menu_on_host(input: &str) -> (String, i32) {
    let t = TempDir::new("menu-host");
    let lib = root().join("boot/lib");
    let script = format!(
        r#". '{0}/ntfsclone-job.sh'; . '{0}/ntfsclone-menu.sh'
menu_scan() {{
	menu_n=2
	menu_name_1=sda1 menu_sectors_1=2048 menu_fs_1=ntfs menu_label_1='Wïndows €' menu_model_1=disk menu_boot_1=
	menu_name_2=sdb menu_sectors_2=4096 menu_fs_2= menu_label_2= menu_model_2=stick menu_boot_2=
}}
job_overlaps() {{ [ "$1" = "$2" ]; }}
menu_written() {{ echo 8; }}
job_run() {{ echo "JOB $job_mode $job_source $job_target $job_image"; say "ntfsclone-job: ok"; exit 0; }}
menu_main <"$IN"
st=$?
printf '\nstatus %s\n' "$st""#,
        lib.display()
    );
    let input_path = t.join("input");
    fs::write(&input_path, input).unwrap();
    let out = run(Command::new(require("busybox"))
        .args(["sh", "-c", &script])
        .env("IN", &input_path));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let status = text
        .lines()
        .find_map(|l| l.strip_prefix("status "))
        .unwrap_or_else(|| panic!("menu_main did not return:\n{text}"))
        .parse()
        .unwrap();
    (text, status)
}

/// The menu's answers without QEMU: bad input asked again, the end of input and `q` leave (the
/// menu returns), a wrong name cancels, the right one runs the job once with the chosen devices.
#[test]
fn menu_answers_on_the_host() {
    // End of input at the first question, and after bad answers.
    let (out, st) = menu_on_host("");
    assert_eq!(st, 0, "{out}");
    assert!(out.contains("mode [1-3, r = rescan, q = shell]: "), "{out}");
    // The model column lines up under its heading, after a non-ASCII label too.
    let column = |l: &str, word: &str| l.find(word).map(|i| l[..i].chars().count());
    let heading = out.lines().find(|l| l.contains(" model")).unwrap();
    let row = out.lines().find(|l| l.contains("\"Wïndows €\"")).unwrap();
    assert_eq!(column(row, "disk"), column(heading, "model"), "{out}");
    let (out, st) = menu_on_host("x\n9\n\n1\n0\n3\n2\n");
    assert_eq!(st, 0, "{out}");
    for want in [
        "not a mode: x",
        "not a mode: 9",
        "not a number from the list: 0",
        "no entry 3",
        "/dev/sdb is not an NTFS volume",
    ] {
        assert!(out.contains(want), "no {want:?}:\n{out}");
    }
    assert!(!out.contains("JOB "), "{out}");
    // q at a later question leaves too.
    let (out, _) = menu_on_host("1\n1\nq\nnever read\n");
    assert!(
        out.contains("target (overwritten) [1-2, q = shell]: "),
        "{out}"
    );
    assert!(!out.contains("not a number"), "{out}");
    // A wrong name cancels; the menu comes back; the right name runs the clone once.
    let (out, _) = menu_on_host("1\n1\n1\n2\nsda1\n1\n1\n2\n/dev/sdb\nq\n");
    assert!(out.contains("/dev/sda1 is the source /dev/sda1"), "{out}");
    assert!(out.contains("cancelled: nothing was written"), "{out}");
    assert_eq!(out.matches("JOB ").count(), 1, "one job expected:\n{out}");
    assert!(out.contains("JOB clone /dev/sda1 /dev/sdb \n"), "{out}");
    assert!(
        out.contains(
            "ntfsclone-job: ok\nsummary: clone ok, 0 bytes (0.0 MiB) written to /dev/sdb in "
        ),
        "{out}"
    );
    // A restore over HTTP: the address is checked, the command and parameters printed.
    let (out, _) = menu_on_host("3\nh\nftp://x/y.img\nhttp://10.0.2.2:8000/a b.img\nhttp://10.0.2.2:8000/w.img.gz\n2\nsdb\nq\n");
    assert!(
        out.contains("an address starting with http:// or https://"),
        "{out}"
    );
    assert!(out.contains("no blanks or quotes"), "{out}");
    assert!(
        out.contains("command:        wget -q -O - http://10.0.2.2:8000/w.img.gz | gunzip -c | ntfsclone --restore-image --overwrite /dev/sdb -"),
        "{out}"
    );
    assert!(
        out.contains("job parameters: ntfsclone.mode=restore ntfsclone.target=/dev/sdb ntfsclone.image=http://10.0.2.2:8000/w.img.gz"),
        "{out}"
    );
    assert!(
        out.contains("JOB restore  /dev/sdb http://10.0.2.2:8000/w.img.gz\n"),
        "{out}"
    );
}
