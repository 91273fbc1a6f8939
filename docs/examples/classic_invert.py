# custom_nodes/classic_invert.py
class InvertColors:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",),
                             "amount": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.1})}}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("inverted",)
    FUNCTION = "invert"
    CATEGORY = "image/classic"

    def invert(self, images, amount):
        return (images + (1.0 - 2.0 * images) * amount,)


NODE_CLASS_MAPPINGS = {"InvertColors": InvertColors}
NODE_DISPLAY_NAME_MAPPINGS = {"InvertColors": "Invert Colors (classic)"}
