"""TensorBoard's own reader on a kokoro run: EventAccumulator loads the
run's event files and finds every kind kokoro writes, each readable as
TensorBoard shows it: the loss and learning-rate scalars at the logged
steps, the sample mel images (PNG that decodes to the stated size), the
sample audio (WAV at the run's rate), and the text (the configuration and
the corpus report).
    check_tensorboard.py RUN_DIR STEPS
Exits 77 without tensorboard (scripts/setup puts it in kokoro's Python
environment)."""

import io
import sys
import wave

try:
    from tensorboard.backend.event_processing import event_accumulator as ea
except ImportError as e:
    print(f"skip: {e}")
    sys.exit(77)


def main(run_dir: str, steps: int) -> int:
    acc = ea.EventAccumulator(run_dir, size_guidance={
        ea.SCALARS: 0, ea.IMAGES: 0, ea.AUDIO: 0, ea.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    failures = []
    print({kind: len(names) for kind, names in tags.items() if isinstance(names, list)})

    scalars = tags["scalars"]
    for wanted in ("loss", "lr"):
        found = [t for t in scalars if t.split("/")[-1] == wanted]
        if not found:
            failures.append(f"no scalar named {wanted} among {scalars}")
            continue
        logged = sorted({e.step for e in acc.Scalars(found[0])})
        print(f"scalar {found[0]}: steps {logged}")
        if logged[-1] != steps:
            failures.append(f"{found[0]} ends at step {logged[-1]}, expected {steps}")

    # The quality evaluation at the run's end: its figures and their ceilings.
    for wanted in ("eval/mcd", "eval/wer", "eval/wer@recording", "eval/mcd@griffin_lim"):
        if wanted not in scalars:
            failures.append(f"no scalar {wanted} among {scalars}")
        else:
            print(f"scalar {wanted}: {[round(e.value, 3) for e in acc.Scalars(wanted)]}")

    if not tags["images"]:
        failures.append("no images")
    for tag in tags["images"]:
        image = acc.Images(tag)[-1]
        png = image.encoded_image_string
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            failures.append(f"image {tag} is not a PNG")
            continue
        # The PNG's own header (IHDR) states the size the summary states.
        width = int.from_bytes(png[16:20], "big")
        height = int.from_bytes(png[20:24], "big")
        print(f"image {tag}: {width}x{height}")
        if (width, height) != (image.width, image.height) or width * height == 0:
            failures.append(f"image {tag}: PNG {width}x{height}, summary "
                            f"{image.width}x{image.height}")

    if not tags["audio"]:
        failures.append("no audio")
    for tag in tags["audio"]:
        audio = acc.Audio(tag)[-1]
        with wave.open(io.BytesIO(audio.encoded_audio_string)) as w:
            rate, frames = w.getframerate(), w.getnframes()
        print(f"audio {tag}: {rate} Hz, {frames} samples, {audio.content_type}")
        if rate != int(audio.sample_rate) or frames == 0 or audio.content_type != "audio/wav":
            failures.append(f"audio {tag}: WAV at {rate} Hz with {frames} samples, summary says "
                            f"{audio.sample_rate} Hz {audio.content_type}")

    texts = {}
    for tag in tags["tensors"]:
        for event in acc.Tensors(tag):
            if event.tensor_proto.dtype == 7:  # DT_STRING
                texts[tag] = event.tensor_proto.string_val[0].decode()
    print(f"text: {sorted(texts)}")
    if "training:" not in texts.get("config", ""):
        failures.append("no config text holding the training section")
    if not any("report" in tag for tag in texts):
        failures.append(f"no corpus report among the texts {sorted(texts)}")

    for f in failures:
        print("check_tensorboard:", f)
    print("check_tensorboard:", "FAILED" if failures else "TensorBoard reads every kind")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
