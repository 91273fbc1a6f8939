"""Inspire's way of returning as many outputs as the front end shows: RETURN_TYPES answers any index."""


class AnyIndexTuple(tuple):
    """A tuple whose items past the end are its first item (Inspire's ByPassTypeTuple)."""

    def __getitem__(self, index):
        return super().__getitem__(0 if isinstance(index, int) and index > 0 else index)


class ImageBatchSplitter:
    @classmethod
    def INPUT_TYPES(s):
        return {"required": {"images": ("IMAGE",), "split_count": ("INT", {"default": 1, "min": 0, "max": 50})}}

    RETURN_TYPES = AnyIndexTuple(("IMAGE",))
    FUNCTION = "split"
    CATEGORY = "fixture"

    def split(self, images, split_count):
        """The first `split_count` images one by one, then the rest as one batch."""
        return tuple(images[i:i + 1] for i in range(min(split_count, len(images)))) + (images[split_count:],)
